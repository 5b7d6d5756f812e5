from dockyard import errors


def test_every_error_has_a_code_status_and_message() -> None:
    table = errors.error_table()
    assert len(table) >= 19
    for cls in table:
        assert cls.code.isupper()
        assert 400 <= cls.status < 600
        assert cls.message


def test_envelope_shape() -> None:
    error = errors.BlobUnknown(detail={"digest": "sha256:x"})
    assert error.envelope() == {
        "errors": [
            {
                "code": "BLOB_UNKNOWN",
                "message": "blob unknown to registry",
                "detail": {"digest": "sha256:x"},
            }
        ]
    }
    assert errors.ManifestTooLarge.status == 413
    assert errors.Unsupported.status == 405


def test_message_override_and_headers() -> None:
    error = errors.RangeInvalid(message="bad", headers={"Range": "0-9"})
    assert error.envelope()["errors"][0]["message"] == "bad"
    assert error.headers == {"Range": "0-9"}
