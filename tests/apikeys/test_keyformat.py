import pytest

from apikeys.keyformat import BASE62, MalformedKey, generate_key, hash_key, parse_key


def test_generated_key_has_prefix_and_checksum_and_parses_back():
    raw_key, stored = generate_key("live")
    assert raw_key.startswith("plk_live_") and len(raw_key) == len("plk_live_") + 50
    parsed = parse_key(raw_key)
    assert parsed == stored and parsed.secret_hash == hash_key(raw_key) and len(parsed.secret_hash) == 64
    assert parse_key(generate_key("test")[0]).environment == "test"


def test_every_single_character_change_is_refused_by_the_checksum():
    raw_key, _ = generate_key("test")
    body_start = len("plk_test_")
    for position in range(body_start, len(raw_key)):
        replacement = BASE62[(BASE62.index(raw_key[position]) + 1) % 62]
        with pytest.raises(MalformedKey):
            parse_key(raw_key[:position] + replacement + raw_key[position + 1 :])


@pytest.mark.parametrize(
    "raw_key",
    ["", "plk_prod_" + "a" * 50, "ghp_" + "a" * 50, "plk_live_" + "a" * 49, "plk_live_" + "!" * 50, "plk_live"],
)
def test_malformed_keys(raw_key):
    with pytest.raises(MalformedKey):
        parse_key(raw_key)


def test_unknown_environment_is_refused_at_generation():
    with pytest.raises(ValueError):
        generate_key("staging")
