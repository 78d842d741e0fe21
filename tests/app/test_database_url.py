"""DATABASE_URL as the deployment writes it: one host, or every member of a Patroni cluster (docs/architecture.md)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import database_from_url


def test_one_host_gives_one_host_and_the_timeouts_that_keep_a_dead_host_from_hanging_a_request():
    entry = database_from_url("postgres://comments:s3cret@127.0.0.1:5432/comments")
    assert (entry["HOST"], entry["PORT"], entry["NAME"], entry["USER"]) == ("127.0.0.1", "5432", "comments", "comments")
    assert entry["CONN_HEALTH_CHECKS"] is True
    options = entry["OPTIONS"]
    assert options["connect_timeout"] == 3
    assert options["keepalives"] == 1
    assert options["tcp_user_timeout"] == 10000
    assert "target_session_attrs" not in options


def test_every_member_of_a_cluster_goes_to_libpq_which_keeps_the_one_that_accepts_writes():
    entry = database_from_url(
        "postgres://comments:p%2Fw@10.0.0.21,10.0.0.22,10.0.0.23:5432/comments?target_session_attrs=read-write"
    )
    assert entry["HOST"] == "10.0.0.21,10.0.0.22,10.0.0.23"
    assert entry["PORT"] == "5432"
    assert entry["PASSWORD"] == "p/w"
    assert entry["OPTIONS"]["target_session_attrs"] == "read-write"


def test_an_unknown_parameter_is_refused_with_the_ones_allowed():
    with pytest.raises(ImproperlyConfigured, match="may carry only sslmode, target_session_attrs after '\\?', not options"):
        database_from_url("postgres://comments:x@db:5432/comments?options=-c%20search_path%3Devil")
