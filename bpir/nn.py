"""``bpir.nn``: functional layers, recurrent cells, initializers and penalties (parameters are
pytrees; no hidden state). See bpir.frontends.layers, .recurrent and .initializers."""

from bpir.frontends.initializers import (  # noqa: F401
    fans,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    normal,
    xavier_normal,
    xavier_uniform,
    zeros,
)
from bpir.frontends.layers import (  # noqa: F401
    avg_pool2d,
    batch_norm,
    batch_norm_init,
    conv2d,
    conv2d_init,
    dense,
    dense_init,
    dropout,
    embedding,
    embedding_init,
    flatten_batch,
    l1_penalty,
    l2_penalty,
    layer_norm,
    layer_norm_init,
    max_pool2d,
    multi_head_attention,
    multi_head_attention_init,
)
from bpir.frontends.recurrent import gru_cell, gru_init, lstm_carry, lstm_cell, lstm_init, unroll  # noqa: F401
