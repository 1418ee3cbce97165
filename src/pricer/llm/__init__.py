"""Stage 3, language models: prompts, base models, decoding a price, the LLM predictor, fine-tuning, benchmarks."""
