"""LoRA fine-tuning (SFT, DPO) from exported feedback; the run's adapter is served by llama.cpp."""
