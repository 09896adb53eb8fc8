"""moto's S3 server in its own process that can go down and come back *with its data*, as S3 does
after an outage (a restarted standalone moto server would come back empty).

Run as ``python s3_switch.py PORT``; it answers ``up`` once listening, then reads ``down`` / ``up``
commands on stdin: ``down`` closes the listening socket (connections are refused), ``up`` listens
again on the same port, the buckets and objects intact.
"""

from __future__ import annotations

import sys

from moto.server import ThreadedMotoServer


def main(port: int) -> None:
    server = ThreadedMotoServer("127.0.0.1", port, verbose=False)
    server.start()
    print("up", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "down":
            server.stop()
            server._server.server_close()  # stop() leaves the socket listening: refuse instead
            print("down", flush=True)
        elif command == "up":
            server = ThreadedMotoServer("127.0.0.1", port, verbose=False)
            server.start()
            print("up", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
