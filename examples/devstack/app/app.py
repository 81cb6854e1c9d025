"""A tiny app: counts visits in PostgreSQL (through psql, to stay dependency-free)."""
import http.server
import subprocess


def sql(query):
    out = subprocess.run(["psql", "-tAc", query], capture_output=True, text=True, check=True)
    return out.stdout.strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = "ok\n"
        else:
            sql("CREATE TABLE IF NOT EXISTS visits (at timestamptz DEFAULT now())")
            sql("INSERT INTO visits DEFAULT VALUES")
            body = f"hello from devstack: visit number {sql('SELECT count(*) FROM visits')}\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
