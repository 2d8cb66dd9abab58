"""uint8 replay: contiguous sequences, reward-prioritised sampling, chunked save/load, memory that grows with use,
frames on disk."""
import os

import numpy as np
import pytest
import torch


def rows(n, num_envs=2, rewarded=()):
    reward = np.zeros((n, num_envs), np.float32)
    for t, e in rewarded:
        reward[t, e] = 1.0
    return dict(obs=np.random.randint(0, 256, (n, num_envs, 64, 64, 3), np.uint8),
                is_first=np.zeros((n, num_envs), bool), action=np.random.randint(0, 15, (n, num_envs)),
                reward=reward, terminal=np.zeros((n, num_envs), bool), logp=np.full((n, num_envs), -2.7, np.float32))


def test_sequences_are_contiguous_streams_of_one_env(mod):
    replay = mod.Replay(1000, 2)
    data = rows(300)
    replay.add(data)
    assert replay.data["obs"].dtype == np.uint8
    t, e = replay.sample(64, 10, np.random.default_rng(0))
    assert (np.diff(t, axis=1) == 1).all() and (e == e[:, :1]).all() and t.min() >= 0 and t.max() < 300
    batch = replay.batch((t, e), "cpu")
    assert tuple(batch["obs"].shape) == (64, 10, 3, 64, 64) and str(batch["obs"].dtype) == "torch.uint8"
    assert np.array_equal(batch["obs"][3, 4].permute(1, 2, 0).numpy(), data["obs"][t[3, 4], e[3, 0]])


@pytest.mark.parametrize("priority", [0.0, 0.5, 0.8])
def test_reward_priority_fraction(mod, priority):
    replay = mod.Replay(5000, 2)
    replay.add(rows(4000, rewarded=[(1000, 0), (3000, 1)]))
    t, e = replay.sample(4000, 10, np.random.default_rng(1), priority)
    hit = (replay.data["reward"][t, e] != 0).any(1).mean()
    base = 20 / 8000  # chance that a uniform sequence contains one of the two rewards
    assert abs(hit - (priority + (1 - priority) * base)) < 0.03


def test_save_and_load_in_chunks(mod, tmp_path):
    replay = mod.Replay(500, 2)
    first, second = rows(100), rows(50)
    replay.add(first)
    replay.save(tmp_path)
    replay.add(second)
    replay.save(tmp_path)
    replay.add(rows(20))
    replay.save(tmp_path)  # a chunk newer than the checkpoint below: loading ignores it
    loaded = mod.Replay(500, 2)
    loaded.load(tmp_path, 150)
    assert loaded.rows == 150 and not loaded.data["obs"].any()  # read at the first use: a night may never use it
    loaded.sample(4, 8, np.random.default_rng(0), priority=0.5)
    assert np.array_equal(loaded.data["obs"][100:150], second["obs"]) and not loaded.data["obs"][150:].any()
    assert np.array_equal(loaded.data["logp"][:100], first["logp"])
    whole = mod.Replay(500, 2)
    whole.add(first), whole.add(second)
    assert np.array_equal(loaded.rewarded, whole.rewarded)  # the reward-priority index as if added
    with pytest.raises(SystemExit, match=f"replay chunk {tmp_path}/missing/000000000.npz is missing, and the"):
        mod.Replay(500, 2).load(tmp_path / "missing", 10)
    first_chunk = tmp_path / "000000000.npz"
    kept = first_chunk.read_bytes()
    shorter = mod.Replay(500, 2)
    shorter.add(rows(60))
    shorter.save(tmp_path / "shorter")
    first_chunk.write_bytes((tmp_path / "shorter" / "000000000.npz").read_bytes())  # valid, but 60 rows, not 100
    replaced = f"chunk {tmp_path}/000000060.npz is missing, yet later chunks are there: {first_chunk} was replaced"
    with pytest.raises(SystemExit, match=replaced):
        mod.Replay(500, 2).load(tmp_path, 150)
    first_chunk.write_bytes(kept)
    chunk = tmp_path / "000000100.npz"
    chunk.write_bytes(chunk.read_bytes()[:1000])
    with pytest.raises(SystemExit, match=f"replay chunk {chunk} is damaged"):
        mod.Replay(500, 2).load(tmp_path, 150)


def memory_mb():
    """(resident, of which anonymous: not a file's pages, which the kernel can only swap, never drop) in MB."""
    with open("/proc/self/statm") as f:
        resident, file_pages = (int(n) * 4096 / 2**20 for n in f.read().split()[1:3])
    return resident, resident - file_pages


def test_memory_grows_with_what_is_stored(mod):
    before = memory_mb()[0]
    replay = mod.Replay(200_000, 5)  # room for 1M frames: 12.3 GB if it were all touched
    allocated = memory_mb()[0]
    replay.add(rows(1000, 5))  # 5000 frames = 61 MB of uint8
    filled = memory_mb()[0]
    assert allocated - before < 100
    assert 40 < filled - allocated < 150


def test_frames_on_disk_give_the_same_batches_and_hold_no_memory_of_their_own(mod, tmp_path):
    """--replay-on-disk: the frames live in a nameless file of the run folder, whose pages the kernel may drop;
    the replay gives back the same batches, and leaves no file behind (nothing to clean up after a killed run)."""
    data = rows(1000, 5)  # 5000 frames = 61 MB of uint8
    in_memory = mod.Replay(200_000, 5)
    in_memory.add(data)
    before = memory_mb()[1]
    on_disk = mod.Replay(200_000, 5, tmp_path / "run")
    on_disk.add(data)
    assert isinstance(on_disk.data["obs"], np.memmap) and memory_mb()[1] - before < 20
    index = in_memory.sample(64, 10, np.random.default_rng(0), 0.5)
    mine, theirs = in_memory.batch(index, "cpu"), on_disk.batch(index, "cpu")
    assert all(torch.equal(mine[k], theirs[k]) for k in mine) and os.listdir(tmp_path / "run") == []
