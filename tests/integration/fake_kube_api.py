#!/usr/bin/python3
"""A stand-in for a Kubernetes API server's discovery, enough for kubectl's client-side dry run
(`kubectl apply --dry-run=client --validate=false`) without a cluster: kubectl needs to map each
kind to a resource (/api, /apis, /api/v1, /apis/apps/v1) and asks whether the object exists
(answered 404). Nothing is stored. Usage: fake_kube_api.py PORTFILE (writes the port it took)."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def res(name, kind, namespaced=True):
    return {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}


DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        res("namespaces", "Namespace", False), res("serviceaccounts", "ServiceAccount"),
        res("secrets", "Secret"), res("services", "Service"), res("configmaps", "ConfigMap")]},
    "/apis/apps/v1": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        res("daemonsets", "DaemonSet"), res("deployments", "Deployment")]},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        body, code = DISCOVERY.get(path), 200
        if body is None:
            code = 404
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                    "message": "not found", "code": 404}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()
