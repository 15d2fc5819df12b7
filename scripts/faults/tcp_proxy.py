#!/usr/bin/env python3
"""A TCP forwarder: tcp_proxy.py LISTEN_PORT TARGET_PORT (both on 127.0.0.1).

scripts/faults/services.sh puts it in front of the in-memory schema registry: stopping the
proxy makes the registry unreachable (connection refused) without losing its schemas."""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(listen, target):
    async def handle(c_reader, c_writer):
        try:
            t_reader, t_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(pipe(c_reader, t_writer), pipe(t_reader, c_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen, reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
