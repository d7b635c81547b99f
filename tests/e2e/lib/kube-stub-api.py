#!/usr/bin/env python3
"""kube-stub-api.py PORTFILE — a stand-in for a Kubernetes API server, for
`kubectl apply --dry-run=client --validate=false` only (tests/e2e/kubernetes-image.sh).

kubectl needs discovery (which kinds exist, namespaced or not) and a GET of each object (to
decide create or patch) even in client dry-run. This answers discovery for the kinds Weft's
manifests use (v1 Namespace, ConfigMap, Secret, Service, ServiceAccount; apps/v1 DaemonSet) and
404 for every object, so kubectl reports "created (dry run)" and never sends a write. It knows
nothing of schemas: field checks are the test's own. Listens on 127.0.0.1, an ephemeral port
written to PORTFILE. Logs each request path to stderr.
"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def res(name, kind, namespaced, short=()):
    return {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": list(short)}

DOCS = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:0"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        res("namespaces", "Namespace", False, ["ns"]), res("configmaps", "ConfigMap", True, ["cm"]),
        res("secrets", "Secret", True), res("services", "Service", True, ["svc"]),
        res("serviceaccounts", "ServiceAccount", True, ["sa"])]},
    "/apis/apps/v1": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        res("daemonsets", "DaemonSet", True, ["ds"])]},
    "/version": {"major": "1", "minor": "28", "gitVersion": "v1.28.0-weft-stub"},
}

class H(BaseHTTPRequestHandler):
    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/") or "/"
        if path in DOCS:
            return self.send(200, DOCS[path])
        self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                        "code": 404, "message": "the stub API server stores no objects: %s" % path})
    def do_POST(self):  # a write would mean kubectl did not dry-run: refuse loudly
        self.send(405, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405,
                        "message": "kube-stub-api: refusing %s %s (dry-run only)" % (self.command, self.path)})
    do_PUT = do_PATCH = do_DELETE = do_POST
    def log_message(self, fmt, *args):
        sys.stderr.write("kube-stub-api: %s %s\n" % (self.command, self.path))

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
