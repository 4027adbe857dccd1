"""The backends of engine/tests/grpc_health.rs: HTTP/2 servers whose health a test sets.

`grpc`: a grpcio server on 127.0.0.1, port 0, plain TCP (h2c), serving the standard health
service (`grpcio-health-checking`, installed by .ci/test) with the whole server's status
SERVING. Each stdin line (`SERVING`, `NOT_SERVING`) sets that status.

`plain LOG`: an h2c server on the `h2` package, 127.0.0.1 port 0, answering every request
with the status last set (200 at first; each stdin line is a status) and no body, appending
each request's headers to LOG as one JSON line.

Both print {"port": N} on stdout and serve until stdin closes.
"""

import json
import socket
import sys
import threading
from concurrent import futures


def serve_grpc():
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server.start()
    print(json.dumps({"port": port}), flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word:
            servicer.set("", getattr(health_pb2.HealthCheckResponse, word))
    server.stop(0)


def serve_plain(log_path):
    import h2.config
    import h2.connection
    import h2.events

    state = {"status": 200}
    lock = threading.Lock()

    def connection(sock):
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        with lock, open(log_path, "a") as log:
                            log.write(json.dumps(dict(event.headers)) + "\n")
                    if isinstance(event, h2.events.StreamEnded):
                        conn.send_headers(
                            event.stream_id,
                            [(":status", str(state["status"])), ("content-length", "0")],
                            end_stream=True,
                        )
                    if isinstance(event, h2.events.ConnectionTerminated):
                        sock.sendall(conn.data_to_send())
                        return
                sock.sendall(conn.data_to_send())
        except Exception:
            return
        finally:
            sock.close()

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def accept():
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=connection, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word:
            state["status"] = int(word)


if __name__ == "__main__":
    if sys.argv[1] == "grpc":
        serve_grpc()
    else:
        serve_plain(sys.argv[2])
