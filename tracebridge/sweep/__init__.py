"""Sweeps: sweep config → Ray Tune grid (role × variant × ablation × seed), per-trial resources,\ncheckpoints on storage, retries and resume; Ray Train for multi-GPU trials.\n"""
