#!/usr/bin/python3
"""An HTTPS-like peer for test_wire.py and bench/sql_overhead.py --https-beside: a TLS server on
127.0.0.1 that accepts connections and reads them until they close.
usage: tls_sink.py DIR   (writes DIR/cert.pem and DIR/key.pem, prints "port N", then serves)"""
import os
import socket
import ssl
import subprocess
import sys
import threading

d = sys.argv[1]
crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                "-keyout", key, "-out", crt], capture_output=True, check=True)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(crt, key)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print("port", ls.getsockname()[1], flush=True)


def serve(s):
    try:
        with ctx.wrap_socket(s, server_side=True) as t:
            while t.recv(4096):
                pass
    except (OSError, ssl.SSLError):
        pass


while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
