"""The novelty check and its index, on synthetic images (fast; no teacher needed).
The adversarial corpus on real dreams is tests/test_adversarial.py."""
import json

import pytest
import torch
from pathlib import Path

from safetensors.torch import load_file, save_file

from codream import spec as specmod
from miner import cheats
from codream import novelty as N
from verifier.index import NoveltyIndex, NoveltyIndexError
from verifier.validate import NOT_NOVEL_CODES, not_novel_reasons

CID_A = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
CID_B = "bafkreidgvpkjawlxz6sffxzwgooowe5yt7i6wsyg236mfoks77nywkptdq"


DREAMS = Path(__file__).parent / "data" / "dreams-digits.safetensors"


@pytest.fixture(scope="module")
def dreams():
    """Real honest dreams of the digits task from three independent miner seeds (300, 300 and
    100 images): smooth synthetic images are far more alike than dreams, so the calibration
    is checked on the real thing."""
    return load_file(str(DREAMS))


@pytest.fixture(scope="module")
def a(dreams):
    return dreams["a"]


@pytest.fixture(scope="module")
def b(dreams):
    return dreams["b"]


def ref(kind, label, x):
    return N.reference(kind, label, x)


def test_grid_is_the_pixels_of_8x8_grey_images_and_an_exact_mean_otherwise():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8, generator=g)
    assert torch.equal(N.grid(x), x[:, 0])
    rgb = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=g)
    want = rgb.double().mean(1).view(3, 8, 4, 8, 4).mean((2, 4))
    assert torch.equal(N.grid(rgb), torch.floor(want + 0.5).to(torch.uint8))  # round half up, exactly
    with pytest.raises(ValueError, match="uint8"):
        N.grid(x.float())


NOISY = {"noise32", "gauss16", "composite"}  # calibrated on real dreams in test_adversarial.py


@pytest.mark.parametrize("name", sorted(cheats.TRANSFORMS))
def test_every_transformed_copy_is_a_near_twin_of_its_source(a, name):
    copy = cheats.TRANSFORMS[name](a, 0)
    r = N.check_novelty(copy, earlier=[ref("earlier_submission", "a", a)], self_check=False)
    assert r.novel_fraction <= (0.1 if name in NOISY else 0.01), (name, r.to_json())


def test_independent_images_are_novel_and_the_report_says_what_was_checked(a, b, dreams):
    r = N.check_novelty(b, earlier=[ref("earlier_submission", "a", a)], eval_images=dreams["c"])
    assert r.novel_fraction >= 0.99
    j = r.to_json()
    assert j["checked"] == {"self": 300, "earlier_submission": 300, "earlier_task": 0, "eval_set": 100}
    assert set(j) >= {"n", "novel", "novel_fraction", "not_novel", "sources", "threshold", "near_threshold", "stages"}
    json.dumps(j)


def test_geometric_copies_are_found_by_the_hashes_alone(a):
    r = N.check_novelty(cheats.shift(cheats.hflip(a), 1), earlier=[ref("earlier_submission", "a", a)],
                        config={"trigger_hits": 10_000})  # no exhaustive stage
    assert r.stages["hash"] == 300 and r.stages["exhaustive"] == 0


def test_a_bulk_copy_triggers_the_exhaustive_check_of_its_source(a):
    noisy = cheats.noise(a, 32, seed=5)
    hashed = N.check_novelty(noisy, earlier=[ref("earlier_submission", "a", a)], config={"trigger_hits": 10_000})
    full = N.check_novelty(noisy, earlier=[ref("earlier_submission", "a", a)])
    assert full.exhaustive_groups == ["earlier_submission: a"]
    assert full.stages["exhaustive"] > 0 and full.n_novel < hashed.n_novel


def test_the_earliest_commitment_wins(a, b):
    union = torch.cat([a[:150], b[:150]])
    r = N.check_novelty(union, earlier=[ref("earlier_submission", "s0", a), ref("earlier_submission", "s1", b)])
    assert r.n_novel <= 3 and r.counts()["earlier_submission"] >= 297
    assert set(r.to_json()["sources"]) == {"s0", "s1"}
    # the first committed bundle is judged only against what came before it
    assert N.check_novelty(a).novel_fraction >= 0.99


def test_mode_collapse_counts_all_but_the_first_of_each_twin_group(a):
    x = torch.cat([a[:10].repeat(10, 1, 1, 1), a[10:110]])
    r = N.check_novelty(x)
    # the 90 repeats, and at most one more: a source copied in bulk is searched exhaustively at
    # the lower source threshold, where one of the 100 distinct dreams sits (0.95 <= s < 0.96)
    assert 90 <= r.counts()["self"] <= 91 and 109 <= r.n_novel <= 110
    assert bool(r.novel[:10].all()) and not bool(r.novel[10:100].any())


def test_eval_images_are_contamination(a):
    r = N.check_novelty(cheats.noise(a[:100], 16), eval_images=a)
    assert r.counts()["eval_set"] >= 99
    reasons = not_novel_reasons(r, 0.5)
    assert [x["code"] for x in reasons] == [NOT_NOVEL_CODES["eval_set"]] and "eval set" in reasons[0]["detail"]


def test_similarity_is_deterministic_across_thread_counts_and_stages(a):
    copy = cheats.composite(a, 3)
    views, mids = N.query_views(N.grid(copy))
    e = N.grid(a).float().flatten(1)
    torch.set_num_threads(1)
    s1, i1 = N.similarity_exhaustive(views, mids, e)
    torch.set_num_threads(2)
    s2, i2 = N.similarity_exhaustive(views, mids, e, chunk=37)
    assert torch.equal(s1, s2) and torch.equal(i1, i2)
    # the pairwise path (hash candidates) gives the same bits as the exhaustive path
    k = torch.arange(len(copy))
    best_view = torch.stack([N._similarity(views[v], mids[v].repeat(len(k)), e[i1]) for v in range(len(views))]).max(0)
    assert torch.equal(best_view.values, s1)


def test_crop_and_resize_is_an_exact_linear_map_equal_to_bilinear_interpolation():
    g = torch.randint(0, 256, (2000, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for oy, ox in N._ZOOMS:
        crop = g.float().unsqueeze(1)[:, :, oy:oy + 7, ox:ox + 7]
        want = torch.nn.functional.interpolate(crop, (8, 8), mode="bilinear", align_corners=False)
        assert torch.equal(N._zoom(g, oy, ox), want.round().clamp(0, 255).to(torch.uint8).squeeze(1))


def test_view_codes_take_nine_medians_and_equal_the_72_views_codes(a, b):
    g = N.grid(torch.cat([a, b, torch.randint(0, 256, (200, 1, 8, 8), dtype=torch.uint8)]))
    code, margin = N._window_codes(N.query_views(g)[0])
    fast_code, low = N._view_codes(g, 4)
    assert torch.equal(code, fast_code) and len(N._WIN_PIX) == 9
    # the probed bits are each view's 4 least certain ones (as a multiset of margins)
    assert torch.equal(margin.gather(-1, low).sort(-1).values, margin.sort(-1).values[..., :4])
    # and the same grid pixels in every flip / rotation of a window
    pixels = N._WIN_SRC.unsqueeze(1).expand(-1, len(g), -1).gather(-1, low).sort(-1).values
    assert all(torch.equal(pixels[v], pixels[N._WIN_SET.tolist().index(int(N._WIN_SET[v]))]) for v in range(72))


def test_a_common_code_yields_only_its_earliest_index_max_bucket_entries(a):
    # 50 earlier bundles of one image each, all with the same code: a query of that image looks
    # at the earliest index_max_bucket of them and still finds it (they are all twins)
    refs = [N.reference("earlier_task", f"t{i}", a[:1]) for i in range(50)]

    class Stored:
        def references(self, _):
            return refs
    seen = {}
    for cap in (1, 16):
        r = N.check_novelty(a[:1], index=Stored(), config={"index_max_bucket": cap})
        assert r.source == ["t0"]
        seen[cap] = r.stages["candidates"]
    assert seen[1] >= 1 and seen[16] == 16 * seen[1]  # every matching bucket holds 50 entries


def test_an_empty_reference_is_checked_against_nothing(a):
    empty = N.reference("earlier_submission", "empty", torch.zeros(0, 1, 8, 8, dtype=torch.uint8))
    r = N.check_novelty(a[:5], earlier=[empty], eval_images=torch.zeros(0, 1, 8, 8, dtype=torch.uint8))
    assert r.n_novel == 5 and r.checked["earlier_submission"] == 0


def test_two_runs_give_the_same_report(a, b):
    x = torch.cat([cheats.noise(a[:100], 24), b[:100]])
    r1 = N.check_novelty(x, earlier=[ref("earlier_submission", "a", a)])
    r2 = N.check_novelty(x, earlier=[ref("earlier_submission", "a", a)])
    assert torch.equal(r1.novel, r2.novel) and torch.equal(r1.similarity, r2.similarity)


# -- the persistent index -------------------------------------------------------------------------
def test_index_persists_per_teacher_and_finds_replays(tmp_path, a, b):
    idx = NoveltyIndex(tmp_path / "ix")
    assert idx.add([CID_A], a, {"task_id": 1, "submission": 0}) is True
    assert idx.add([CID_A], a, {"task_id": 1, "submission": 0}) is False      # idempotent
    idx.add([CID_A, CID_B], b, {"task_id": 2, "submission": 3})
    again = NoveltyIndex(tmp_path / "ix")                                      # from disk
    assert [r.label for r in again.references([CID_A])] == ["task 1 submission 0", "task 2 submission 3"]
    assert [r.label for r in again.references([CID_B])] == ["task 2 submission 3"]
    assert [r.label for r in again.references([CID_A, CID_B])] == ["task 1 submission 0", "task 2 submission 3"]
    r = N.check_novelty(cheats.rot90(a), index=_Only(again, [CID_B]))
    assert r.novel_fraction >= 0.99                                   # another teacher's history: not a replay
    r = N.check_novelty(cheats.rot90(a), index=_Only(again, [CID_A]))
    assert r.counts()["earlier_task"] >= 297
    assert not list((tmp_path / "ix").rglob("*.part"))
    assert again.stats()["teachers"][CID_A] == {"bundles": 2, "images": 600}


class _Only:
    """An index seen through a fixed set of teacher CIDs (what a task's spec would give)."""

    def __init__(self, idx, cids):
        self.idx, self.cids = idx, cids

    def references(self, _):
        return self.idx.references(self.cids)


def test_index_is_bounded_and_drops_the_oldest_bundle(tmp_path, a, b):
    idx = NoveltyIndex(tmp_path, max_images=500)
    idx.add([CID_A], a, {"task_id": 1})
    idx.add([CID_A], b, {"task_id": 2})
    assert [r.label.split()[1] for r in idx.references([CID_A])] == ["2"]
    assert len(list((tmp_path / CID_A).glob("*.safetensors"))) == 1


def test_index_refuses_malformed_files_without_unpickling(tmp_path, a):
    idx = NoveltyIndex(tmp_path)
    idx.add([CID_A], a, {"task_id": 1})
    shard = next((tmp_path / CID_A).glob("*.safetensors"))
    save_file({"grids": torch.zeros(3, 8, 8)}, str(shard))                     # wrong dtype and size
    with pytest.raises(NoveltyIndexError, match="expected grids uint8"):
        NoveltyIndex(tmp_path).references([CID_A])
    shard.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(NoveltyIndexError, match="unreadable"):
        NoveltyIndex(tmp_path).references([CID_A])
    (tmp_path / CID_A / "manifest.json").write_text('{"format": "x"}')
    with pytest.raises(NoveltyIndexError, match="manifest"):
        NoveltyIndex(tmp_path).references([CID_A])
    with pytest.raises(ValueError, match="CID"):
        idx.add(["../../etc"], a, {"task_id": 9})


@pytest.mark.parametrize("key,value", [("threshold", 1.5), ("probe_bits", 20), ("max_bucket", 0), ("index_max_bucket", 0),
                                       ("bogus", 1),
                                       ("reference_images", -1)])
def test_spec_validation_names_the_novelty_field(reference_task, key, value):
    raw = json.loads(open(reference_task["spec"]).read())
    raw["scoring"]["novelty"][key] = value
    with pytest.raises(specmod.SpecError, match="scoring.novelty"):
        specmod.validate(raw)
