#!/usr/bin/env python3
"""A real SMTP server for Postern's tests (aiosmtpd), with scripted answers.

    python3 smtp_sink.py --dir DIR [--port 0] [--tempfail N] [--reject]
                         [--auth USER:PASSWORD] [--pipelining]

Listens on 127.0.0.1 (port 0 picks a free one), prints "PORT <n>" on the
first line of standard output once it accepts connections, and saves every
accepted message as DIR/<n>.eml (written under a dot-name, then renamed).

--tempfail N   answers "451 4.3.0" to the end of DATA for the first N
               messages, then accepts.
--reject       answers every RCPT with a 550 that quotes the address, as
               real servers do.
--auth U:P     offers AUTH PLAIN/LOGIN over plain text and requires it.
--pipelining   offers PIPELINING (RFC 2920) and appends a line to
               DIR/pipelined.log for each RCPT whose DATA had already
               arrived with it (the client pipelined them).

No STARTTLS is offered: smtp+starttls:// clients must refuse this server.
"""

import argparse
import asyncio
import itertools
import os
import sys
import logging
import warnings

from aiosmtpd.smtp import SMTP, AuthResult


class Handler:
    def __init__(self, directory, tempfail, reject):
        self.directory = directory
        self.tempfail = tempfail
        self.reject = reject
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if getattr(self, "pipelining", False) and b"DATA" in bytes(server._reader._buffer):
            with open(os.path.join(self.directory, "pipelined.log"), "a") as f:
                f.write("RCPT with DATA behind it\n")
        if self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 Temporary failure, try again later"
        n = next(self.counter)
        name = f"{os.getpid()}-{n:06d}.eml"
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, name))
        return f"250 2.0.0 Ok: queued as Q{n}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tempfail", type=int, default=0)
    parser.add_argument("--reject", action="store_true")
    parser.add_argument("--auth")
    parser.add_argument("--pipelining", action="store_true")
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    os.makedirs(args.dir, exist_ok=True)
    handler = Handler(args.dir, args.tempfail, args.reject)
    if args.pipelining:
        handler.pipelining = True

        async def handle_EHLO(server, session, envelope, hostname, responses):
            # Every line but the last is "250-…"; PIPELINING goes before it.
            session.host_name = hostname
            return responses[:-1] + ["250-PIPELINING"] + responses[-1:]

        handler.handle_EHLO = handle_EHLO

    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user.encode() and auth_data.password == password.encode()
            # handled=False: aiosmtpd then answers 535 itself.
            return AuthResult(success=ok, handled=False)

        kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
        warnings.simplefilter("ignore")

    def factory():
        # A fixed host name: the default looks up our FQDN, which can be slow.
        return SMTP(handler, hostname="sink.test", enable_SMTPUTF8=True, **kwargs)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", args.port)
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
