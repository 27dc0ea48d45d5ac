"""SavedModels made from the real SSDLite frozen graph, zipped as a user would upload them.

`tf1`: the TF1 Object Detection exporter's layout (a `serve` graph holding the nodes, signature
input `inputs`). `tf2`: `tf.saved_model.save` of a function wrapping the graph (signature input
`input_tensor`, nodes in the function library, a `variables/` folder): the layout of TF2
exports. Made in a subprocess, so no test process imports TensorFlow (4 s, 1 GB).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from darkroom import client

SCRIPT = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
graph, out = sys.argv[1], sys.argv[2]
OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
graph_def = tf.compat.v1.GraphDef()
graph_def.ParseFromString(open(graph, "rb").read())
g = tf.Graph()
with g.as_default():
    tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=g) as sess:
        builder = tf.compat.v1.saved_model.Builder(os.path.join(out, "tf1", "saved_model"))
        signature = tf.compat.v1.saved_model.predict_signature_def(
            inputs={"inputs": g.get_tensor_by_name("image_tensor:0")},
            outputs={n: g.get_tensor_by_name(n + ":0") for n in OUTPUTS})
        builder.add_meta_graph_and_variables(
            sess, ["serve"], signature_def_map={"serving_default": signature})
        builder.save()
wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
pruned = wrapped.prune(feeds="image_tensor:0", fetches={n: n + ":0" for n in OUTPUTS})
module = tf.Module()
@tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
def serve(input_tensor):
    return pruned(input_tensor)
module.serve = serve
tf.saved_model.save(module, os.path.join(out, "tf2", "saved_model"),
                    signatures={"serving_default": serve})
"""


def zip_folder(folder: Path, dest: Path) -> Path:
    """`folder` zipped with its name as the archive's top folder, as the client uploads it."""
    with dest.open("wb") as out:
        client.zip_folder(folder, out)
    return dest


def export_saved_models(graph: Path, out: Path) -> dict[str, Path]:
    """{"tf1": folder, "tf2": folder}: the SavedModel folders (each named `saved_model`)."""
    subprocess.run([sys.executable, "-c", SCRIPT, str(graph), str(out)], check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return {layout: out / layout / "saved_model" for layout in ("tf1", "tf2")}
