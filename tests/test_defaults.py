"""Every default equals the paper's Tables 1 and 2, and --help names each with its symbol."""
import pytest

from conftest import METHOD_SCRIPTS, load_script, run_script

TABLES = dict(stoch=32, classes=32, deter=512, cnn_depth=32, units=512, day_lr=5e-4, wm_lr=5e-4, night_lr=1e-4,
              reward_bins=255, bins_extreme=20.0, kl_dyn_scale=0.5, kl_rep_scale=0.1, vf_coef=0.5, ent_coef=0.001,
              gamma=0.99, gae_lambda=0.95, clip_coef=0.2, max_grad_norm=0.5, update_epochs=4, seed_episodes=5,
              day_epochs=200, wm_updates=20, day_steps=5000, wm_batch_size=100, seq_len=25, night_epochs=200,
              night_updates=26, dream_batch_size=12, horizon=16, eval_episodes=25, num_envs=5, free_nats=1.0,
              unimix=0.01, num_levels=200, start_level=0, distribution_mode="easy", env_id="coinrun", seed=1,
              log_dir="runs", eps_dream=None, fail_penalty=None, reward_scale=None)
SWING, DEEPDREAM, VALUE = dict(p_swing=0.5), dict(dd_steps=10, dd_step_size=0.1), dict(vd_steps=10, vd_step_size=0.5)
METHOD_TABLES = {"dream_ppo_value": VALUE, "dream_ppo_rnd": SWING, "dream_ppo_deepdream": DEEPDREAM,
                 "dream_ppo_full": {**SWING, **DEEPDREAM, **VALUE}, "dreamer_baseline": dict(init_states="random"),
                 "offline_ppo": dict(burn_in=9)}
SYMBOLS = ["C:", "J:", "K:", "S:", "E_d:", "T_d:", "U_w:", "B_w:", "L:", "E_n:", "U_a:", "B_a:", "H:", "beta_1:",
           "beta_2:", "c_v:", "c_e:", "epsilon:", "gamma:", "lambda:", "eps_dream:", "RNN hidden units",
           "test repetition", "parallelized environments", "penalty for non-successful episodes",
           "reward scaling factor", "PPO iterations", "PPO gradient clip factor", "bins extremes"]


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_defaults_equal_the_tables(script):
    mod = load_script(script)
    args = mod.Args()
    for key, value in {**TABLES, **METHOD_TABLES[mod.__name__]}.items():
        assert getattr(args, key) == value, key
    assert args.exp_name == mod.__name__
    assert mod.FAIL_PENALTY == {"coinrun": -10.0, "caveflyer": -10.0} and mod.REWARD_SCALE == {"chaser": 25.0}


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_help_names_every_symbol(script):
    out = run_script(script, "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for symbol in SYMBOLS:
        assert symbol in text, symbol
    for flag in ("--env-id", "--seed", "--no-cuda", "--track", "--log-dir", "--save-checkpoint", "--resume",
                 "--load-day-checkpoint", "--night-updates", "--dream-batch-size"):
        assert flag in text, flag
    for name in METHOD_TABLES[script[:-3]]:
        assert "--" + name.replace("_", "-") in text, name
