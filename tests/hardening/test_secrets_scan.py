"""No secret in what the whole run wrote: every test's logs and stderr (collected as the run goes, by
tests/hardening/conftest.py) and every log file of the processes the tests started (Celery workers,
gunicorn) under pytest's temporary folder. Moved to the end of the run by the conftest."""

import secrets

from tests.hardening.conftest import RunOutput, configured_secrets, secrets_in


def test_the_scanner_finds_each_kind_of_secret():
    known = {"DJANGO_SECRET_KEY[0]": secrets.token_urlsafe(50)}
    assert secrets_in("key=plk_live_" + "a1B2" * 12 + "zz", known) == ["API key"]
    assert secrets_in("signing with whsec_" + "QUJD" * 8, known) == ["webhook secret"]
    assert secrets_in("signing with whsk_" + "QUJD" * 10 + "QUI=", known) == ["webhook private key"]
    assert secrets_in(f"settings {known['DJANGO_SECRET_KEY[0]']}", known) == ["DJANGO_SECRET_KEY[0]"]
    assert secrets_in("key plk_live_abcd…wxyz prefix only; whsec_ alone; whsk_ alone; whpk_" + "QUJD" * 11, known) == []


def test_no_secret_in_the_output_of_the_whole_run(tmp_path_factory):
    assert configured_secrets(), "the run's environment has no secret to look for (DJANGO_SECRET_KEY)"
    log_files = sorted(tmp_path_factory.getbasetemp().rglob("*.log"))
    for path in log_files:
        RunOutput.scan(str(path), path.read_text(errors="replace"))
    assert RunOutput.scanned_bytes > 0
    assert not RunOutput.findings, f"secrets in the run's output: {RunOutput.findings[:10]}"
