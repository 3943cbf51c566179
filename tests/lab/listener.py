# -*- coding: utf-8 -*-
# Copyright: netdiag.reachability contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real service for lab hosts: an HTTP server, a TCP banner, or a UDP echo."""
import argparse
import http.server
import socket
import socketserver


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto", choices=["tcp", "udp"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--kind", choices=["http", "banner", "echo"], default="banner")
    ap.add_argument("--name", default="lab")
    a = ap.parse_args()
    family = socket.AF_INET6 if ":" in a.bind else socket.AF_INET

    if a.proto == "udp":
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((a.bind, a.port))
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)

    if a.kind == "http":
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = ("%s:%d ok\n" % (a.name, a.port)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = family
            allow_reuse_address = True
        Server((a.bind, a.port), Handler).serve_forever()

    class Banner(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(("%s port %d ready\r\n" % (a.name, a.port)).encode())

    class TServer(socketserver.ThreadingTCPServer):
        address_family = family
        allow_reuse_address = True
        daemon_threads = True
    TServer((a.bind, a.port), Banner).serve_forever()


if __name__ == "__main__":
    main()
