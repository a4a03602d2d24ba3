"""Seed the benchmark database: consultants b0..bN-1, and optionally their sessions.

Run with the server's environment (`python -m bench.seed ...`). One password
hash is computed and shared: hashing it N times would take minutes. Prints a
JSON object {username: session key} for the consultants whose login is minted
here instead of going through the login form.
"""

import argparse
import json

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--consultants", type=int, required=True)
    parser.add_argument("--max-queue", type=int, default=20)
    parser.add_argument("--sessions-from", type=int, default=0)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    django.setup()
    print(
        json.dumps(
            seed(args.consultants, args.max_queue, args.sessions_from, args.password)
        )
    )


def username(i: int) -> str:
    return f"b{i}"


def seed(count: int, max_queue: int, sessions_from: int, password: str) -> dict:
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction

    from consult.models import Consultant

    User = get_user_model()
    encoded = make_password(password)
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(username=username(i), password=encoded) for i in range(count)
        )
        Consultant.objects.bulk_create(
            Consultant(
                user=u, slug=u.username, name=f"Bench {u.username}", max_queue=max_queue
            )
            for u in users
        )
    sessions = {}
    for user in users[sessions_from:]:
        # What django.contrib.auth.login() stores, without the password check.
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions[user.username] = store.session_key
    return sessions


if __name__ == "__main__":
    main()
