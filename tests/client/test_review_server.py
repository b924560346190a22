"""The review loop against a real server: annotate --rank, a simulated correction, review, status, rank."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_serving.local import free_ports

from .conftest import save_nifti
from .server_model import LESIONS, hu_band_repository, lesion_phantom

pytestmark = [pytest.mark.server, pytest.mark.slow]


def cli(*args) -> dict:
    result = CliRunner().invoke(main, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_annotate_rank_review_status(tmp_path) -> None:
    from eanno_serving.local import LocalServer

    grpc, http, metrics = free_ports()
    server = LocalServer(
        hu_band_repository(tmp_path / "srv"),
        grpc_port=grpc,
        http_port=http,
        metrics_port=metrics,
        run_dir=tmp_path / "srv" / "run",
    )
    out = tmp_path / "out"
    srcs = {}
    for name, codes in (("a", "RAS"), ("b", "LPS")):
        hu, affine, _ = lesion_phantom(codes)
        srcs[name] = save_nifti(tmp_path / f"{name}.nii.gz", hu, affine)
    with server:
        url = server.urls["grpc"]
        cli("annotate", srcs["a"], "--out", out, "--url", url, "--no-preview")
        kept = [
            x
            for x in json.loads((out / "a" / "report.json").read_text())["lesions"]
            if x["decision"] == "kept"
        ]
        assert len(kept) == len(LESIONS)
        # b is annotated with the PDAC HU window's upper edge just above its lesions' mean HU: still kept,
        # but a close call that must put b first; a (skipped, default rules) has no such call
        edge = max(x["hu_mean"] for x in kept) + 8.0
        rules = json.dumps({"hu_window": {"pdac": [-206, edge]}})
        summary = cli(
            "annotate",
            srcs["a"],
            srcs["b"],
            "--out",
            out,
            "--url",
            url,
            "--no-preview",
            "--continue",
            "--rules",
            rules,
            "--rank",
        )
    assert (summary["done"], summary["skipped"]) == (1, 1)
    ranking = summary["ranking"]
    assert [r["case"] for r in ranking] == ["b", "a"]
    assert ranking[0]["borderline"] == len(LESIONS) and ranking[1]["score"] < ranking[0]["score"]
    assert all("mean HU" in r["why"] and r["decision"] == "kept" for r in ranking[0]["reasons"])
    assert json.loads((out / "ranking.json").read_text())["ranking"] == ranking

    # the radiologist deletes one kept lesion of b and draws a missed cyst far from both
    img = nib.load(str(out / "b" / "labels.nii.gz"))
    labels = np.asarray(img.dataobj).copy()
    assert (labels == 3).any()
    from scipy import ndimage

    cc, n = ndimage.label(labels == 3, np.ones((3, 3, 3)))
    assert n == len(LESIONS)
    # the voxel farthest from both lesions, kept off the border so a 3-voxel cube fits around it
    distance = ndimage.distance_transform_edt(cc == 0)
    distance[[0, -1]], distance[:, [0, -1]], distance[:, :, [0, -1]] = 0, 0, 0
    i, j, k = np.unravel_index(int(distance.argmax()), distance.shape)
    labels[cc == 1] = 1
    labels[i - 1 : i + 2, j - 1 : j + 2, k - 1 : k + 2] = 4
    save_nifti(out / "b" / "revised.nii.gz", labels, img.affine)
    review = cli("review", out, out)
    assert [c["case"] for c in review["cases"]] == ["b"]
    errors = review["summary"]["errors"]
    assert (errors["false_positive_kept"], errors["missed"], errors["boundary"]) == (1, 1, 0)
    assert review["summary"]["lesion_counts"]["unchanged"] == len(LESIONS) - 1

    cli(
        "status", "set", out / "b", "--needs-changes", "--reviewer", "alice", "--comment", "one lesion is not"
    )
    progress = cli("status", out)
    assert progress["counts"] == {"approved": 0, "needs_changes": 1, "pending": 1}
    assert progress["items"][1]["revised"] is True
    assert [r["case"] for r in cli("rank", out)["ranking"]] == ["a"]
