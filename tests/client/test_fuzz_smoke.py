"""A few examples of each fuzz target (`make fuzz` runs them for minutes); cases the fuzzer once found."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from eanno_client.readers import read_volume
from eanno_client.volume import InputError

spec = importlib.util.spec_from_file_location("fuzz_readers", Path(__file__).with_name("fuzz_readers.py"))
fuzz_readers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz_readers)


@pytest.mark.parametrize("target", sorted(fuzz_readers.TARGETS))
def test_fuzz_target_smoke(target) -> None:
    fuzz_readers.TARGETS[target](15)()


@pytest.mark.parametrize(
    "tag,value,words",
    [
        (
            (0x0002, 0x0010),
            None,
            "cannot decode pixel data: no transfer syntax in the file meta",
        ),  # no TransferSyntaxUID
        ((0x0028, 0x1052), b"x1024.0", "malformed RescaleSlope/RescaleIntercept"),  # written as raw bytes
        ((0x0028, 0x0030), None, "missing or malformed geometry tags"),  # no PixelSpacing
    ],
)
def test_damaged_tags_found_by_fuzzing(tmp_path, tag, value, words) -> None:
    import pydicom

    fuzz_readers._import_conftest()
    folder = tmp_path / "series"
    folder.mkdir()
    path = folder / "slice.dcm"
    path.write_bytes(fuzz_readers.valid_dicom_bytes())
    if isinstance(value, bytes):  # pydicom refuses to set an invalid DS: damage the file's bytes
        raw = path.read_bytes()
        assert raw.count(b"-1024.0") == 1
        path.write_bytes(raw.replace(b"-1024.0", value))
    else:
        ds = pydicom.dcmread(path)
        del (ds.file_meta if tag[0] == 0x0002 else ds)[tag]
        ds.save_as(path, enforce_file_format=False)
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_volume(folder)
