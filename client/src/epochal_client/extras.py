"""The client's optional extras, named once for every message that asks for one."""

# numpy and onnxruntime: raw rows encoded, outputs read, .npz files, offline prediction
PREDICT_INSTALL = "pip install 'epochal-client[predict]'"
