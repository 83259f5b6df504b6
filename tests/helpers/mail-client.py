#!/usr/bin/env python3
"""Real mail clients (Python's imaplib, poplib, smtplib, and a ManageSieve client of a few lines)
logging in to the test servers.

mail-client.py login [--from ADDRESS] PROTOCOL MECHANISM PORT USER PASSWORD
    PROTOCOL imap|pop3|smtp|submission|sieve; MECHANISM login|plain (IMAP LOGIN / AUTHENTICATE
    PLAIN), user (POP3 USER/PASS), plain|login (SMTP AUTH, for Postfix's smtp and Dovecot's
    submission), plain (ManageSieve AUTHENTICATE "PLAIN"). --from binds the client's end to
    ADDRESS (say 127.0.0.2), so the server sees another remote address. Prints "accepted"
    (exit 0) or "refused" (exit 1: the server's own refusal, IMAP NO, POP3 -ERR, SMTP 535,
    ManageSieve NO); anything else (no connection, a timeout, another answer) is an error
    (exit 2), so a broken server never passes for one that refuses.

mail-client.py auth-burst SOCKET SERVICE USER PASSWORD COUNT CLIENTS
    COUNT logins (AUTH PLAIN) through Dovecot's authentication service itself, the auth-client
    socket that its login processes use, from CLIENTS connections at once, each waiting for
    one answer before it asks again. Prints "N accepted, M refused"; exits 0 only if every
    login was accepted.

mail-client.py offers-auth PORT
    Says whether the LMTP server on PORT offers AUTH after LHLO: prints "auth" (exit 0) or
    "no auth" (exit 1).

mail-client.py burst CASES_JSON
    CASES_JSON: a list of [protocol, mechanism, port, user, password, expected, source] with
    expected true or false and source an address to connect from or null. Runs them from 8 parallel clients and prints "N right, M wrong"; exits 0 only
    if every answer was the expected one.
"""
import base64
import os
import imaplib
import json
import poplib
import smtplib
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

HOST = "127.0.0.1"


def connect(port, source):
    """A TCP connection to the server, from `source` when given."""
    return socket.create_connection(
        (HOST, port), timeout=30, source_address=(source, 0) if source else None
    )


class FromSource:
    """imaplib and poplib connect through _create_socket: this one binds the client's end."""

    def __init__(self, port, source):
        self.source = source
        super().__init__(HOST, port, timeout=30)

    def _create_socket(self, timeout):
        return connect(self.port, self.source)


class IMAP(FromSource, imaplib.IMAP4):
    pass


class POP3(FromSource, poplib.POP3):
    pass


def sieve_login(port, user, password, source):
    """ManageSieve (RFC 5804): the greeting lists capabilities and ends with OK; AUTHENTICATE
    "PLAIN" with an initial response is answered OK or NO."""
    with connect(port, source) as sock:
        replies = sock.makefile("rb")

        def reply():
            while True:
                line = replies.readline()
                if not line:
                    raise ConnectionError("ManageSieve server closed the connection")
                if line.startswith((b"OK", b"NO", b"BYE")):
                    return line

        if not reply().startswith(b"OK"):
            raise ConnectionError("ManageSieve server did not greet with OK")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        sock.sendall(f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode())
        answer = reply()
        sock.sendall(b"LOGOUT\r\n")
        if answer.startswith(b"OK"):
            return True
        if answer.startswith(b"NO"):
            return False
        raise ConnectionError(f"ManageSieve answered {answer!r}")


def login(protocol, mechanism, port, user, password, source=None):
    """True if the server accepted the login, False if it refused it."""
    port = int(port)
    if protocol == "imap":
        client = IMAP(port, source)
        try:
            if mechanism == "plain":
                token = f"\0{user}\0{password}".encode()
                client.authenticate("PLAIN", lambda _: token)
            else:
                client.login(user, password)
            client.logout()
            return True
        except imaplib.IMAP4.abort:
            raise  # the connection broke: not an answer
        except imaplib.IMAP4.error as refusal:
            # imaplib raises this for a tagged NO (a refusal) and for BAD ("... command error:
            # BAD ...", a client bug).
            if "command error: BAD" in str(refusal):
                raise
            return False
    if protocol == "pop3":
        client = POP3(port, source)
        try:
            client.user(user)
            client.pass_(password)
            client.quit()
            return True
        except poplib.error_proto as refusal:
            if not refusal.args[0].startswith(b"-ERR"):
                raise
            return False
    if protocol in ("smtp", "submission"):
        client = smtplib.SMTP(
            HOST, port, timeout=30, source_address=(source, 0) if source else None
        )
        try:
            client.ehlo()
            if mechanism == "plain":
                client.auth("PLAIN", lambda challenge=None: f"\0{user}\0{password}")
            else:
                client.user, client.password = user, password
                client.auth("LOGIN", client.auth_login)
            client.quit()
            return True
        except smtplib.SMTPAuthenticationError as refusal:
            # 535: the credentials were refused. Anything else (454: the server could not ask
            # its SASL backend) is an error, never a refusal.
            if refusal.smtp_code != 535:
                raise
            return False
    if protocol == "sieve":
        return sieve_login(port, user, password, source)
    raise ValueError(f"unknown protocol {protocol}")


def offers_auth(port):
    """True if the LMTP server advertises AUTH in its LHLO reply."""
    client = smtplib.LMTP(HOST, int(port), timeout=30)
    try:
        client.ehlo_or_helo_if_needed()
        return client.has_extn("auth")
    finally:
        client.quit()


def auth_burst(socket_path, service, user, password, count, clients):
    """Dovecot's auth protocol (VERSION 1.2), as its login processes speak it: the client says
    its version and a process id unique among the connections, the server its mechanisms and
    DONE, then each AUTH with an initial response is answered OK or FAIL."""
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    per_client = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]

    def client(n):
        accepted = refused = retried = 0
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(60)
            sock.connect(socket_path)
            lines = sock.makefile("rb")
            # Ours first: Dovecot 2.3 greets at once, 2.4 only after the client's handshake.
            pid = (os.getpid() % 1_000_000) * 100 + n
            sock.sendall(f"VERSION\t1\t2\nCPID\t{pid}\n".encode())
            while True:
                line = lines.readline()
                if not line:
                    raise ConnectionError("the auth service closed the connection")
                if line == b"DONE\n":
                    break
            request = 0
            for _ in range(per_client[n]):
                # A FAIL flagged `temp` is Dovecot's own trouble, not a verdict on the password
                # (an auth worker that exited at its request limit with a request already sent
                # to it): a login process answers "Temporary authentication failure" and the
                # client tries again, as this does, once.
                for attempt in range(2):
                    request += 1
                    sock.sendall(
                        f"AUTH\t{request}\tPLAIN\tservice={service}\tsecured\t"
                        f"lip=127.0.0.1\trip=127.0.0.1\tresp={token}\n".encode()
                    )
                    answer = lines.readline().decode().rstrip("\n").split("\t")
                    if answer[:2] == ["OK", str(request)]:
                        accepted += 1
                        break
                    if answer[:2] != ["FAIL", str(request)]:
                        raise ConnectionError(f"unexpected answer {answer[:2]}")
                    if "temp" in answer[2:] and attempt == 0:
                        retried += 1
                        continue
                    refused += 1
                    break
        return accepted, refused, retried

    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(client, range(clients)))
    accepted = sum(a for a, _, _ in results)
    refused = sum(r for _, r, _ in results)
    retried = sum(t for _, _, t in results)
    print(f"{accepted} accepted, {refused} refused, {retried} retried after a temporary failure")
    return refused == 0 and accepted == count


def main():
    try:
        run(sys.argv[1:])
    except Exception as error:  # noqa: BLE001 - every failure that is not an answer is exit 2
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(2)


def run(args):
    if args[0] == "login":
        source = None
        if args[1] == "--from":
            source, args = args[2], args[2:]
        accepted = login(*args[1:6], source=source)
        print("accepted" if accepted else "refused")
        sys.exit(0 if accepted else 1)
    if args[0] == "auth-burst":
        socket_path, service, user, password = args[1:5]
        sys.exit(0 if auth_burst(socket_path, service, user, password, int(args[5]), int(args[6])) else 1)
    if args[0] == "offers-auth":
        offered = offers_auth(args[1])
        print("auth" if offered else "no auth")
        sys.exit(0 if offered else 1)
    if args[0] == "burst":
        cases = json.loads(open(args[1]).read())
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda c: login(*c[:5], source=c[6]) == c[5], cases))
        right = sum(results)
        print(f"{right} right, {len(results) - right} wrong")
        sys.exit(0 if right == len(results) else 1)
    sys.exit(2)


if __name__ == "__main__":
    main()
