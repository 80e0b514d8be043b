// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "util.h"

int pt_verbose;
