"""Export and interoperability: take a trained run folder to the formats the ecosystem runs, and back.

    llmlab export hf   --model RUN --out DIR               # Hugging Face LlamaForCausalLM folder
    llmlab export gguf --model RUN --out m.gguf --dtype q8_0   # llama.cpp
    llmlab export bin  --model RUN --out model.bin         # the seeds' "two files" with standalone/run.py
    llmlab import hf   --path DIR --out RUN                # a local Llama-architecture checkpoint -> run folder

``hf.py`` (safetensors + config + tokenizer + chat template), ``gguf.py`` (llama.cpp), ``binfile.py``
(model.bin, read by ``llmlab/standalone/run.py``, numpy only). Heavy libraries are imported inside functions.
"""
