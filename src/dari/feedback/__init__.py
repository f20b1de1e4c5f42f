"""Feedback on answers: recorded against their traces (`store`), turned into SFT, DPO and golden
eval sets (`export`, near-duplicates found by `dedup`), and summed up (`report`)."""
