from dataclasses import dataclass

from core.configuration import FromSettings, setting


@dataclass(frozen=True)
class Limits(FromSettings):
    files: int = setting("DEPLOY_BUNDLE_MAX_FILES")
    archive_bytes: int = setting("DEPLOY_BUNDLE_MAX_BYTES")


def test_from_settings_reads_each_field_from_its_setting_when_called(settings):
    settings.DEPLOY_BUNDLE_MAX_FILES, settings.DEPLOY_BUNDLE_MAX_BYTES = 7, 1234
    assert Limits.from_settings() == Limits(files=7, archive_bytes=1234)
    settings.DEPLOY_BUNDLE_MAX_FILES = 8
    assert Limits.from_settings().files == 8
