"""Training per role: model factory (pretrained or random-init, tiny tokenizer), TRL SFT and DPO\nrecipes with typed configs, LoRA, and the baseline/optimized variants.\n"""
