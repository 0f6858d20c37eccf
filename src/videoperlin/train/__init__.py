"""Training and evaluation: one engine behind VPN pre-training, fine-tuning and evaluation."""
