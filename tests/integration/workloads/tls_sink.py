#!/usr/bin/python3
"""An HTTPS-like peer for test_wire.py and bench/sql_overhead.py --https-beside: a TLS server on
127.0.0.1 that accepts connections and reads them until they close.
usage: tls_sink.py DIR   (writes DIR/sink.pem and DIR/sink.key, prints "port N", then serves)
Its contexts also serve wire_drivers.py's own HTTPS server and clients."""
import os
import socket
import ssl
import subprocess
import sys
import threading


def server_context(d, stem):
    """A server context with a self-signed certificate made as DIR/STEM.pem and DIR/STEM.key."""
    crt, key = os.path.join(d, stem + ".pem"), os.path.join(d, stem + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", crt], capture_output=True, check=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


def client_context():
    """A client context that takes any certificate (the peers here are self-signed)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def serve(ctx, s):
    try:
        with ctx.wrap_socket(s, server_side=True) as t:
            while t.recv(4096):
                pass
    except (OSError, ssl.SSLError):
        pass


def main():
    ctx = server_context(sys.argv[1], "sink")
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print("port", ls.getsockname()[1], flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(ctx, c), daemon=True).start()


if __name__ == "__main__":
    main()
