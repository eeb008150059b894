"""Path computation: folders, subfolder replication, templates, overrides, escapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transcoder_admin.config.loader import Configuration
from transcoder_admin.config.model import AdminConfig, CustomerConfig, safe_name
from transcoder_admin.context.customers import StoreContext
from transcoder_admin.context.paths import (
    PathEscapeError,
    Roots,
    join_virtual,
    split_virtual,
)


def make_store(customer: dict, defaults: dict | None = None) -> StoreContext:
    """A store with one customer built from plain mappings."""
    admin = AdminConfig.model_validate(
        {"roots": {"default": "/srv/media", "temp": "/var/tmp/t"}, "defaults": defaults or {}}
    )
    cust = CustomerConfig.model_validate(customer)
    return StoreContext(Configuration("/etc/ta/admin.yaml", admin, {cust.name: cust}, {}))


ACME = {
    "name": "ACME",
    "profiles": {
        "Web": {
            "targets": {
                "high": {"type": "audio-video", "extension": "mp4"},
                "thumbs": {"type": "thumbnails"},
                "copy": {"type": "identity"},
            }
        }
    },
}


def test_default_folders_follow_the_design_layout():
    """Every folder of DESIGN.md §4 for customer acme and profile web."""
    prof = make_store(ACME).customer("ACME").profile("Web")
    assert prof.folder("incoming") == "default:/acme/files/incoming/web"
    assert prof.folder("outgoing") == "default:/acme/files/outgoing/web"
    assert prof.folder("done") == "default:/acme/files/done/web"
    assert prof.folder("failed") == "default:/acme/files/failed/web"
    assert prof.folder("links") == "default:/acme/files/links/web"
    assert prof.folder("work") == "temp:/acme/work/web"
    assert prof.folder("config") == "default:/acme/configs/web"
    assert prof.folder("done-reports") == "default:/acme/reports/done/web"
    assert prof.folder("failed-reports") == "default:/acme/reports/failed/web"


def test_subfolders_are_replicated_everywhere():
    """incoming/web/news/clip.mov keeps news/ in outgoing, done, failed and reports."""
    prof = make_store(ACME).customer("ACME").profile("Web")
    f = prof.file("news/clip.mov")
    assert f.output_folder(prof.target("high")) == "default:/acme/files/outgoing/web/news/high"
    assert prof.target("high").output_name("clip.mov") == "clip.mp4"
    assert f.done() == "default:/acme/files/done/web/news/clip.mov"
    assert f.failed() == "default:/acme/files/failed/web/news/clip.mov"
    assert f.report("J1", True) == "default:/acme/reports/done/web/news/clip.mov.J1.yaml"
    assert f.report("J1", False) == "default:/acme/reports/failed/web/news/clip.mov.J1.yaml"


def test_thumbnails_and_identity_names():
    """Thumbnails are stem.index.ext; identity keeps the source extension."""
    prof = make_store(ACME).customer("ACME").profile("Web")
    assert prof.target("thumbs").output_name("clip.mov", 3) == "clip.3.jpg"
    assert prof.target("copy").output_name("clip.mov") == "clip.mov"
    assert prof.target("copy").output_name("README") == "README"


def test_overrides_and_templates():
    """Customer and profile folder templates, subdirs and output templates are honoured."""
    customer = {
        "name": "Big Customer!",
        "subdir": "big",
        "outgoing": "default:/out/%(customer)s/%(profile)s",
        "profiles": {
            "p": {
                "subdir": "mobile",
                "done": "temp:/archive/%(customer)s-%(profile)s",
                "report-file": "%(stem)s-%(job)s.yml",
                "targets": {
                    "t": {
                        "type": "audio",
                        "subdir": "aac",
                        "output-file": "%(stem)s_%(target)s.%(extension)s",
                    }
                },
            }
        },
    }
    prof = make_store(customer).customer("Big Customer!").profile("p")
    f = prof.file("a/b.wav")
    assert f.output_folder(prof.target("t")) == "default:/out/big/mobile/a/aac"
    assert prof.target("t").output_name("b.wav") == "b_t.m4a"
    assert f.done() == "temp:/archive/big-mobile/a/b.wav"
    assert f.report("X", True) == "default:/big/reports/done/mobile/a/b-X.yml"
    assert prof.priority == 100 * 1000 + 100


def test_inheritance_admin_customer_profile_target():
    """The nearest level that sets a value wins; video settings merge key by key."""
    customer = {
        "name": "C",
        "max-attempts": 4,
        "video": {"codec": "vp9", "bitrate": 500},
        "profiles": {
            "p": {
                "transcoding-timeout": 99,
                "video": {"height": 240},
                "targets": {"t": {"type": "video", "video": {"bitrate": 900}}},
            }
        },
    }
    store = make_store(customer, defaults={"process-priority": 5, "max-attempts": 2})
    eff = store.customer("C").profile("p").target("t").effective
    assert eff.process_priority == 5
    assert eff.max_attempts == 4
    assert eff.transcoding_timeout == 99
    assert eff.video == {"codec": "vp9", "bitrate": 900, "height": 240}


@pytest.mark.parametrize(
    "name, safe",
    [
        ("ACME", "acme"),
        ("Big Customer!", "big-customer"),
        ("../../etc", "etc"),
        ("..", "_"),
        ("Ünïcode Name", "unicode-name"),
        ("a/b\\c", "a-b-c"),
        ("", "_"),
    ],
)
def test_safe_name(name, safe):
    """Names become lowercase path-safe folder names."""
    assert safe_name(name) == safe


@given(st.text())
def test_safe_name_never_leaves_a_folder(name):
    """Whatever the name, the result is one plain path component."""
    result = safe_name(name)
    assert result and "/" not in result and result not in (".", "..")


@pytest.mark.parametrize(
    "virtual",
    ["default:/../x", "default:/a/../../x", "default:/a/\x00", "nowhere:/a", "plain/path"],
)
def test_escaping_virtual_paths_are_refused(virtual):
    """Paths that climb out of the root, name an unknown root or are not virtual fail."""
    roots = Roots({"default": "/srv/media"})
    with pytest.raises(ValueError):
        roots.local(virtual)


def test_file_names_cannot_escape_through_join():
    """A relative path with .. is refused when joined or used as a file."""
    with pytest.raises(PathEscapeError):
        join_virtual("default:/a", "../b")
    prof = make_store(ACME).customer("ACME").profile("Web")
    with pytest.raises(PathEscapeError):
        prof.file("../../etc/passwd")


def test_hostile_names_stay_plain_components():
    """Quotes, $(), ;, newlines and leading dashes are ordinary name characters."""
    prof = make_store(ACME).customer("ACME").profile("Web")
    roots = Roots({"default": "/srv/media", "temp": "/tmp/t"})
    name = "-rf $(reboot); 'x' \"y\"\nz ü.mov"
    f = prof.file(f"deep/er/{name}")
    assert roots.local(f.done()) == f"/srv/media/acme/files/done/web/deep/er/{name}"
    assert split_virtual(f.source)[0] == "default"
