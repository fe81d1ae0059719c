"""Embedded mode only: make sure an operator can log in, and print the credentials."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create (or reset) the demo superuser 'admin' and print its password. Refused in real mode."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        if settings.REAL_MODE:
            raise CommandError("refused: demo credentials are for embedded mode only; use createsuperuser")
        password_file = settings.VAR_DIR / ".demo_admin_password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@localhost"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Operator login: username={username} password={password}")
