#!/usr/bin/env python3
"""Real mail clients (Python's imaplib, poplib, smtplib) logging in to the test servers.

mail-client.py login PROTOCOL MECHANISM PORT USER PASSWORD
    PROTOCOL imap|pop3|smtp; MECHANISM login|plain (IMAP LOGIN / AUTHENTICATE PLAIN),
    user (POP3 USER/PASS), plain|login (SMTP AUTH). Prints "accepted" (exit 0) or "refused"
    (exit 1); anything else is an error (exit 2).

mail-client.py burst CASES_JSON
    CASES_JSON: a list of [protocol, mechanism, port, user, password, expected] with expected
    true or false. Runs them from 8 parallel clients and prints "N right, M wrong"; exits 0 only
    if every answer was the expected one.
"""
import base64
import imaplib
import json
import poplib
import smtplib
import sys
from concurrent.futures import ThreadPoolExecutor

HOST = "127.0.0.1"


def login(protocol, mechanism, port, user, password):
    """True if the server accepted the login, False if it refused it."""
    port = int(port)
    if protocol == "imap":
        client = imaplib.IMAP4(HOST, port, timeout=30)
        try:
            if mechanism == "plain":
                token = f"\0{user}\0{password}".encode()
                client.authenticate("PLAIN", lambda _: token)
            else:
                client.login(user, password)
            client.logout()
            return True
        except imaplib.IMAP4.error:
            return False
    if protocol == "pop3":
        client = poplib.POP3(HOST, port, timeout=30)
        try:
            client.user(user)
            client.pass_(password)
            client.quit()
            return True
        except poplib.error_proto:
            return False
    if protocol == "smtp":
        client = smtplib.SMTP(HOST, port, timeout=30)
        try:
            client.ehlo()
            if mechanism == "plain":
                client.auth("PLAIN", lambda challenge=None: f"\0{user}\0{password}")
            else:
                client.user, client.password = user, password
                client.auth("LOGIN", client.auth_login)
            client.quit()
            return True
        except smtplib.SMTPAuthenticationError:
            return False
    raise ValueError(f"unknown protocol {protocol}")


def main():
    if sys.argv[1] == "login":
        accepted = login(*sys.argv[2:7])
        print("accepted" if accepted else "refused")
        sys.exit(0 if accepted else 1)
    if sys.argv[1] == "burst":
        cases = json.loads(open(sys.argv[2]).read())
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda c: login(*c[:5]) == c[5], cases))
        right = sum(results)
        print(f"{right} right, {len(results) - right} wrong")
        sys.exit(0 if right == len(results) else 1)
    sys.exit(2)


if __name__ == "__main__":
    main()
