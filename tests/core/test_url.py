"""Backend URLs: parsing, options and their precedence, secrets and redaction."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, strategies as st
from pannier.errors import ConfigError
from pannier.url import BackendURL, parse_bool, parse_size, parse_url, redact


def test_parts_of_a_full_url() -> None:
    u = parse_url("sftp://bob:s3cr%40t@host.example:2222/srv/back%20up?Retries=5&key_file=/k")
    assert (u.scheme, u.prefixes) == ("sftp", ())
    assert (u.user, u.password, u.host, u.port) == ("bob", "s3cr@t", "host.example", 2222)
    assert u.path == "/srv/back up"
    assert dict(u.query) == {"retries": "5", "key-file": "/k"}
    assert u.inner is None


def test_file_url_has_no_host() -> None:
    u = parse_url("file:///srv/backup")
    assert (u.host, u.path, u.netloc) == (None, "/srv/backup", "")


def test_prefixes_and_inner_urls() -> None:
    u = parse_url("faulty+multi+file:///x?seed=1")
    assert u.scheme == "file"
    assert u.prefixes == ("faulty", "multi")
    assert u.full_scheme == "faulty+multi+file"
    assert u.inner is not None and u.inner.prefixes == ("multi",)
    assert u.inner.inner is not None and u.inner.inner.raw == "file:///x?seed=1"
    assert u.inner.inner.query["seed"] == "1"


def test_ipv6_host_and_non_numeric_port() -> None:
    u = parse_url("sftp://[::1]:22/x")
    assert (u.host, u.port) == ("::1", 22)
    r = parse_url("rclone://remote:bucket/dir")
    assert (r.host, r.port, r.netloc, r.path) == ("remote", None, "remote:bucket", "/dir")
    with pytest.raises(ConfigError, match="port 'bucket' is not a number"):
        r.require_host()


@pytest.mark.parametrize(
    "bad",
    ["", "/just/a/path", "file:/x", "no scheme here", "sftp://h:99999/x", "file:///x#frag",
     "file:///a\nb"],
)  # fmt: skip
def test_malformed_urls_raise_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="malformed URL"):
        parse_url(bad)


def test_malformed_url_error_is_redacted() -> None:
    with pytest.raises(ConfigError) as info:
        parse_url("sftp://bob:hunter2@h:99999/x")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_redacted_hides_password_and_secret_options() -> None:
    u = parse_url("s3://AK:SKPW@h/b?secret-key=zz&access_token=tt&region=eu&key-file=/p")
    assert u.redacted == "s3://AK:***@h/b?secret-key=***&access_token=***&region=eu&key-file=/p"
    assert "SKPW" not in repr(u) and "zz" not in repr(u)
    assert str(u) == u.redacted


def test_redact_arbitrary_text() -> None:
    text = "failed: sftp://a:pw@h/x and webdav://u:p2@w/y?password=p3&x=1"
    out = redact(text)
    assert "pw" not in out.replace("password", "") and "p2" not in out and "p3" not in out
    assert "x=1" in out


def test_option_precedence_query_then_explicit_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_RETRIES", "9")
    bare = parse_url("file:///x")
    assert bare.option("retries", "1") == "1"
    assert bare.option("retries", "1", env="T_RETRIES") == "9"
    explicit = bare.with_options({"retries": 7})
    assert explicit.option("retries", env="T_RETRIES") == "7"
    queried = parse_url("file:///x?retries=5").with_options({"retries": 7})
    assert queried.option("retries", env="T_RETRIES") == "5"


def test_option_names_ignore_case_and_underscores() -> None:
    u = parse_url("file:///x?BWLIMIT_UP=1M").with_options({"retry_delay": 2})
    assert u.option("bwlimit-up") == "1M"
    assert u.option("Retry-Delay") == "2"


def test_with_options_reaches_inner_url() -> None:
    u = parse_url("faulty+file:///x").with_options({"fsync": True})
    assert u.inner is not None and u.inner.option("fsync") == "true"


@pytest.mark.parametrize("text", ["1", "on", "TRUE", "Yes"])
def test_parse_bool_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "off", "False", "NO"])
def test_parse_bool_false(text: str) -> None:
    assert parse_bool(text) is False


def test_parse_bool_refuses_anything_else() -> None:
    with pytest.raises(ConfigError, match="not a boolean"):
        parse_bool("maybe")


def test_typed_options_and_their_errors() -> None:
    u = parse_url("file:///x?n=3&f=0.5&b=on&s=1.5M&mode=Fast&bad=x")
    assert u.int_option("n", 1) == 3
    assert u.int_option("absent", 1) == 1
    assert u.float_option("f", 0.0) == 0.5
    assert u.bool_option("b", False) is True
    assert u.size_option("s", 0) == 1572864
    assert u.enum_option("mode", ["slow", "fast"], "slow") == "fast"
    with pytest.raises(ConfigError, match=r"option bad: 'x' is not valid"):
        u.int_option("bad", 0)
    with pytest.raises(ConfigError, match="option bad: 'x' is not a boolean"):
        u.bool_option("bad", False)
    with pytest.raises(ConfigError, match="is not one of slow, fast"):
        u.enum_option("bad", ["slow", "fast"], "slow")


def test_parse_size_units() -> None:
    assert parse_size("512") == 512
    assert parse_size("64k") == 65536
    assert parse_size("2MiB") == 2 << 20
    assert parse_size("1G") == 1 << 30
    with pytest.raises(ConfigError, match="not a size"):
        parse_size("fast")


def test_repeated_options() -> None:
    u = parse_url("multi+file:///a?mirror=file:///b&mirror=file:///c")
    assert u.all_options("mirror") == ["file:///b", "file:///c"]
    assert u.query["mirror"] == "file:///c"


def test_secret_sources_in_order(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("T_PW_FILE", str(secret_file))
    monkeypatch.delenv("T_PW", raising=False)
    bare = parse_url("sftp://u@h/x")
    assert bare.secret("password", env="T_PW", file_env="T_PW_FILE") == "from-file"
    monkeypatch.setenv("T_PW", "from-env")
    assert bare.secret("password", env="T_PW", file_env="T_PW_FILE") == "from-env"
    assert parse_url("sftp://u:in-url@h/x").secret("password", env="T_PW") == "in-url"
    assert parse_url("sftp://u@h/x?password=q").secret("password", env="T_PW") == "q"
    assert parse_url(f"sftp://u@h/x?token-file={secret_file}").secret("token") == "from-file"
    assert parse_url("sftp://u@h/x").secret("token") is None


def test_unreadable_secret_file_names_the_file_not_a_secret(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_PW_FILE", str(tmp_path / "absent"))
    u = parse_url("sftp://u:pw@h/x")
    with pytest.raises(ConfigError, match=r"cannot read the token file .*absent.* T_PW_FILE"):
        u.secret("token", file_env="T_PW_FILE")


def test_backend_url_is_immutable() -> None:
    u = parse_url("file:///x")
    assert isinstance(u, BackendURL)
    with pytest.raises(AttributeError):
        u.path = "/y"  # type: ignore[misc]


def test_urls_compare_and_hash_by_value() -> None:
    a, b = parse_url("file:///x?a=1"), parse_url("file:///x?a=1")
    assert a == b and hash(a) == hash(b)
    assert len({a, b, a.with_options({"retries": 2})}) == 2


@given(
    password=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1
    ),
    secret=st.text(alphabet="abcdefXYZ0123456789-_.~", min_size=6),
)
def test_any_password_parses_back_and_never_shows(password: str, secret: str) -> None:
    pw = "PW" + password
    url = f"sftp://user:{quote(pw, safe='')}@host/dir?token={secret}&x=1"
    parsed = parse_url(url)
    assert parsed.password == pw
    assert parsed.query["token"] == secret
    for text in (parsed.redacted, str(parsed), repr(parsed), redact(url)):
        assert quote(pw, safe="") not in text and secret not in text
        assert "x=1" in text


def test_unencoded_at_sign_in_a_password_is_still_hidden() -> None:
    u = parse_url("sftp://u:p@ss@host/x")
    assert (u.password, u.host) == ("p@ss", "host")
    assert u.redacted == "sftp://u:***@host/x"
    assert redact("see sftp://u:p@ss@host/x") == "see sftp://u:***@host/x"


@pytest.mark.parametrize("password", ["pa#ss", "pa?ss", "p@ss", "pa:ss"])
def test_unencoded_special_characters_in_a_password_never_leak(password: str) -> None:
    url = f"sftp://user:{password}@host/x"
    try:
        shown = parse_url(url).redacted
    except ConfigError as e:
        shown = str(e)
    assert password not in shown and "ss" not in shown.replace("sftp", "")
    assert password not in redact(f"error: {url} failed")
