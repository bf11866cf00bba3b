"""Serves a folder on 127.0.0.1 only, with the WebAssembly MIME type browsers need to
compile a module while it downloads: `python3 serve.py DIR PORT`. Port 0 picks a free
one. The browser tests import `serve` from here."""

import functools
import http.server
import sys
import threading


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
    }

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)


def serve(directory, port=0, verbose=False):
    """Starts serving `directory` in a thread; returns the server (`.server_port`)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(Handler, directory=directory)
    )
    server.verbose = verbose
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: serve.py DIR PORT")
    running = serve(sys.argv[1], int(sys.argv[2]), verbose=True)
    print(f"http://127.0.0.1:{running.server_port}/", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        running.shutdown()
