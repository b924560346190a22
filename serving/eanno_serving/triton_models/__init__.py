"""Triton Python-backend model sources, copied by the repository writer to <model>/1/model.py.

They run only inside Triton (they import triton_python_backend_utils) and delegate to eanno_serving.
"""
