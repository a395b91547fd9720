"""TLS / SASL settings reach every Kafka client, and a contradictory or incomplete set is
refused at start-up with every problem named (a role never connects half-configured)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import Settings

BASE = {"kafka_bootstrap_servers": "broker:9093", "database_url": "postgresql://x"}


def test_sasl_over_tls_reaches_producers_consumers_and_admin_clients(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings(
        **BASE, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="tideflow", kafka_sasl_password="s3cret", kafka_ssl_ca_location=ca,
    )  # fmt: skip
    kafka = settings.kafka

    wanted = {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "tideflow", "sasl.password": "s3cret", "ssl.ca.location": str(ca),
    }  # fmt: skip
    for config in (
        kafka.producer_config(),
        kafka.consumer_config("master", "g"),
        kafka.consumer_config("projector", "g"),
        kafka.client_config(),
    ):
        assert wanted.items() <= config.items()
    env = settings.to_env()
    assert env["KAFKA_SASL_PASSWORD"] == "s3cret"  # child roles get the secret, not "****"
    assert "s3cret" not in repr(settings)


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol() -> None:
    security = dict(Settings(**BASE).kafka.security)

    assert security == {"security.protocol": "PLAINTEXT"}


def test_every_problem_of_a_security_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(
            **BASE, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u",
            kafka_ssl_certificate_location=tmp_path / "missing.pem",
        )  # fmt: skip
    text = str(refused.value)
    assert "KAFKA_SASL_MECHANISM is required with SASL_PLAINTEXT" in text
    assert "KAFKA_SASL_PASSWORD is required with SASL_PLAINTEXT" in text
    assert "KAFKA_SSL_CERTIFICATE_LOCATION is set but KAFKA_SECURITY_PROTOCOL is" in text
    assert "no readable file at" in text
    assert "go together" in text

    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME is set but"):
        Settings(**BASE, kafka_sasl_username="u")
