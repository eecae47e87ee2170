"""A real SMTP server for the e-mail tests: aiosmtpd (from PyPI, installed by scripts/test
into target/test-venv) on 127.0.0.1, on a port the kernel picks.

    smtp_server.py --mode plain|starttls|tls --dir DIR [--cert PEM --key PEM] [--user NAME]

`starttls` offers STARTTLS and requires it before MAIL and AUTH; `tls` speaks TLS from the
first byte. With `--user`, AUTH is required and only NAME with the password in the
environment variable SMTP_SERVER_PASSWORD is accepted (never on the command line).

When it listens it prints `ready PORT` on stdout. Each message taken is written, before
the server answers 250, to DIR/mail-N.json: the envelope (`mail_from`, `rcpt_tos`), the
raw `data`, whether it came over TLS and the login that sent it. It runs until killed.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Keeper:
    """Writes each message whole (temp file, then rename) so a reader never sees half."""

    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        data = envelope.original_content or envelope.content or b""
        login = session.auth_data.login.decode() if session.auth_data else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": data.decode("utf-8", errors="replace"),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": login,
        }
        path = os.path.join(self.directory, f"mail-{self.count}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 queued"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user
            and auth_data.password == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["plain", "starttls", "tls"], required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    args = parser.parse_args()

    context = None
    if args.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    options = {"hostname": "localhost", "decode_data": False}
    if args.mode == "starttls":
        options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    else:
        # Implicit TLS is encrypted from the first byte; plain has no AUTH to protect.
        options["auth_require_tls"] = False
    if args.user:
        password = os.environ["SMTP_SERVER_PASSWORD"].encode()
        options.update(
            auth_required=True,
            authenticator=authenticator(args.user.encode(), password),
        )

    keeper = Keeper(args.dir)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(keeper, loop=loop, **options),
            host="127.0.0.1",
            port=0,
            ssl=context if args.mode == "tls" else None,
        )
    )
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    loop.run_forever()


if __name__ == "__main__":
    sys.exit(main())
