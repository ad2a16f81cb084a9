"""``python -m dashboard users add|list|passwd|disable|enable`` — user management on the configured store.

    python -m dashboard users add wang --role duty_officer --display-name 王值班 --password-stdin < pw.txt
    python -m dashboard users add li --role leader            # asks for the password twice (terminal)
    python -m dashboard users list
    python -m dashboard users passwd wang --password-stdin
    python -m dashboard users disable wang

Exit codes: 0 done, 2 refused (bad input, existing or unknown user).
"""
from __future__ import annotations

import getpass
import sys

from ..domain.vocab import USER_ROLES as ROLES


def add_subparser(sub) -> None:
    p = sub.add_parser("users", help="manage dashboard users (add, list, passwd, disable, enable, unlock, role)")
    p.add_argument("--db", help="SQLAlchemy URL (default: DATABASE_URL / the instance SQLite file)")
    usub = p.add_subparsers(dest="users_command", required=True)
    a = usub.add_parser("add", help="create a user")
    a.add_argument("username")
    a.add_argument("--role", required=True, choices=list(ROLES))
    a.add_argument("--display-name", help="name shown in the lifecycle timeline, e.g. 王值班")
    a.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    usub.add_parser("list", help="list users (never shows passwords)")
    pw = usub.add_parser("passwd", help="set a new password (signs the user out everywhere)")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true")
    for name, text in (("disable", "stop a user from signing in (ends their sessions)"), ("enable", "allow again")):
        d = usub.add_parser(name, help=text)
        d.add_argument("username")
    u = usub.add_parser("unlock", help="lift a sign-in lock (too many wrong passwords in a row)")
    u.add_argument("username")
    r = usub.add_parser("role", help="change a user's role (ends their sessions)")
    r.add_argument("username")
    r.add_argument("role", choices=list(ROLES))
    lo = usub.add_parser("logout", help="end every session of a user at once (a lost or shared device)")
    lo.add_argument("username")
    p.set_defaults(func=run)


def _audit(s, action: str, target: str, detail: dict | None = None) -> None:
    """Record a user change made from the command line (who: the operating-system user)."""
    import getpass as gp

    from ..store import audit
    from ..store.models import utcnow

    try:
        who = gp.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid
        who = "?"
    audit.record(s, at=utcnow(), actor=f"cli:{who}"[:64], role="cli", action=action, target=target, detail=detail)


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise SystemExit("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    return first


def _sessions(args):
    from ..settings import Settings
    from ..store import init_db, make_engine, session_factory

    settings = Settings.from_env()
    engine = make_engine(args.db or settings.sqlalchemy_url)
    init_db(engine)
    return engine, session_factory(engine)


def run(args) -> int:
    from ..store.models import utcnow
    from .users import UserError, add_user, end_sessions, list_users, unlock_user, update_user

    engine, sessions = _sessions(args)
    try:
        with sessions() as s:
            cmd = args.users_command
            if cmd == "add":
                user = add_user(s, args.username, _password(args), args.role, display_name=args.display_name)
                _audit(s, "user_add", user.username, {"role": user.role})
                print(f"created {user.username} ({user.role})")
            elif cmd == "list":
                rows = list_users(s)
                now = utcnow()
                print(f"{'username':<20} {'role':<13} {'active':<6} {'name':<16} {'last sign-in':<25} locked until")
                for u in rows:
                    last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "-"
                    lock = u.locked_until.isoformat(timespec="seconds") if u.locked(now) else "-"
                    print(f"{u.username:<20} {u.role:<13} {'yes' if u.active else 'no':<6} {u.name:<16} {last:<25} {lock}")
            elif cmd == "passwd":
                update_user(s, args.username, password=_password(args))
                _audit(s, "user_change", args.username, {"change": "password"})
                print(f"password changed for {args.username} (their sessions ended)")
            elif cmd in ("disable", "enable"):
                update_user(s, args.username, active=cmd == "enable")
                _audit(s, "user_change", args.username, {"change": cmd})
                print(f"{args.username} {cmd}d")
            elif cmd == "unlock":
                unlock_user(s, args.username)
                _audit(s, "user_change", args.username, {"change": "unlock"})
                print(f"{args.username} unlocked")
            elif cmd == "role":
                update_user(s, args.username, role=args.role)
                _audit(s, "user_change", args.username, {"change": "role", "role": args.role})
                print(f"{args.username} is now {args.role}")
            elif cmd == "logout":
                n = end_sessions(s, args.username)
                _audit(s, "user_logout", args.username, {"sessions": n})
                print(f"{n} session(s) of {args.username} ended")
        return 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
