"""The bytes a TF Serving REST client sends and receives for one image, per signature.

    python export.py --model_dir=runs/mnist_quick --export_dir=exported/decompnet
    python benchmarks/serving_response.py --saved_model=exported/decompnet/1

Calls serving_default, serving_boxes and serve_encoded on the loaded SavedModel (the graph TF
Serving runs) with one image (--image, a PNG; default: the first test image of
decomp_mnist/bundled) and serialises each result as TF Serving's REST predict API answers a
row-format request: {"predictions": [{output name: value, ...}]}, numbers as JSON numbers
(floats with the shortest digits that give the float32 back, compact separators). Prints the
request and response sizes in bytes and writes the requests (request.json, the uint8 image as
nested lists; request_b64.json, the PNG in {"b64": ...}) to --out_dir.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None, "An export.py version folder (export_dir/<version>).",
                    required=True)
flags.DEFINE_string("image", None, "A PNG (default: decomp_mnist/bundled's first test image).")
flags.DEFINE_string("out_dir", None, "Where request.json and request_b64.json go (default: "
                    "not written).")


def to_json(value) -> str:
    """A numpy value as compact JSON, floats at float32's shortest round-trip digits."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.ndim:
        return "[" + ",".join(to_json(v) for v in value) + "]"
    value = np.asarray(value)[()]
    if isinstance(value, np.floating):
        return str(np.float32(value))
    return str(int(value))


def rest_response(outputs: dict) -> str:
    """A batch of signature outputs as TF Serving's row-format {"predictions": [...]}."""
    batch = len(next(iter(outputs.values())))
    rows = ["{" + ",".join(f'"{k}":{to_json(v.numpy()[i])}' for k, v in sorted(outputs.items()))
            + "}" for i in range(batch)]
    return '{"predictions":[' + ",".join(rows) + "]}"


def main(argv):
    del argv
    import base64
    import json

    import cv2
    import tensorflow as tf

    if FLAGS.image:
        with tf.io.gfile.GFile(FLAGS.image, "rb") as f:
            png = f.read()
    else:
        import tensorflow_datasets as tfds

        from decompnet_tf.data.builders import open_builder

        builder = open_builder("decomp_mnist/bundled")
        example = next(iter(tfds.as_numpy(builder.as_dataset(split="test").take(1))))
        png = cv2.imencode(".png", example["image"])[1].tobytes()
    image = tf.io.decode_png(png).numpy()  # uint8 [H, W, channels]
    model = tf.saved_model.load(FLAGS.saved_model)
    request = json.dumps({"signature_name": "serving_default",
                          "instances": [{"images": image.tolist()}]}, separators=(",", ":"))
    request_b64 = json.dumps({"signature_name": "serve_encoded", "instances": [
        {"encoded_images": {"b64": base64.b64encode(png).decode()}}]}, separators=(",", ":"))
    print(f"image {image.shape[0]}x{image.shape[1]}x{image.shape[2]}, PNG {len(png)} bytes")
    print(f"request.json (uint8 nested lists): {len(request)} bytes")
    print(f"request_b64.json (PNG as b64): {len(request_b64)} bytes")
    for name, kwargs in (("serving_default", {"images": image[None]}),
                         ("serving_boxes", {"images": image[None]}),
                         ("serve_encoded", {"encoded_images": [png]})):
        out = model.signatures[name](**{k: tf.constant(v) for k, v in kwargs.items()})
        response = rest_response(out)
        masks = (f", masks {'x'.join(map(str, out['detection_masks'].shape[1:]))}"
                 if "detection_masks" in out else ", no masks")
        print(f"{name} response: {len(response)} bytes ({int(out['num_detections'][0])} "
              f"detections{masks})")
    if FLAGS.out_dir:
        tf.io.gfile.makedirs(FLAGS.out_dir)
        for name, text in (("request.json", request), ("request_b64.json", request_b64)):
            with tf.io.gfile.GFile(os.path.join(FLAGS.out_dir, name), "w") as f:
                f.write(text)


if __name__ == "__main__":
    app.run(main)
