"""Compute musicnn reference outputs with the original TensorFlow graph (run once).

Not part of the test suite: it needs TensorFlow, which does not belong in the
project's environment. It was run in a throwaway venv:

    python -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu tf-keras librosa
    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python \
        tests/trainer/data/make_musicnn_reference.py MUSICNN_DIR

where MUSICNN_DIR is the installed `musicnn` package folder (it holds models.py
and the MTT_musicnn/ and MSD_musicnn/ checkpoints). It writes
tests/trainer/data/musicnn_reference.npz: for each model, the sigmoid tag
probabilities and the 200-d penultimate features of the clips in
conftest_models.reference_waveforms(), computed from librosa's float32 log-mel
(188 frames for 3 s; musicnn's patch is the first 187).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import librosa
import numpy as np

HERE = Path(__file__).resolve().parent


def main(musicnn_dir: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    from conftest_models import reference_waveforms

    # Import musicnn's models.py from a copy (the package's __init__ is empty,
    # but its extractor would pull in things we don't need).
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(
        musicnn_dir, tmp / "musicnn", ignore=shutil.ignore_patterns("*_vgg")
    )
    sys.path.insert(0, str(tmp))
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    clips = reference_waveforms()
    names = sorted(clips)
    patches = []
    for name in names:
        mel = librosa.feature.melspectrogram(
            y=clips[name], sr=16000, n_fft=512, hop_length=256, n_mels=96
        ).astype(np.float32)
        patches.append(np.log10(10000 * mel + 1).T[:187])
    batch = np.stack(patches)
    out: dict[str, np.ndarray] = {"clips": np.array(names)}
    for model in ("MTT_musicnn", "MSD_musicnn"):
        tf.compat.v1.reset_default_graph()
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, *_, penultimate = models.define_model(x, is_training, model, 50)
        probs = tf.nn.sigmoid(logits)
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(sess, str(tmp / "musicnn" / model) + "/")
            p, pen = sess.run([probs, penultimate], {x: batch, is_training: False})
        out[f"{model}/tags"] = p.astype(np.float32)
        out[f"{model}/penultimate"] = pen.astype(np.float32)
        print(
            model,
            {
                n: sorted(zip(-p[i], range(50), strict=True))[:3]
                for i, n in enumerate(names)
            },
        )
    np.savez_compressed(HERE / "musicnn_reference.npz", **out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
