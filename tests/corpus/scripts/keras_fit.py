"""Keras 3 model.fit with validation_data (torch backend), verbose=1 or 2."""

import argparse

import keras
import numpy as np
from _data import blobs
from _truth import write_truth

EPOCHS = 5
p = argparse.ArgumentParser()
p.add_argument("--verbose", type=int, default=1)
verbose = p.parse_args().verbose
keras.utils.set_random_seed(0)
x, y = (t.numpy() for t in blobs(1600, seed=1))
xv, yv = (t.numpy() for t in blobs(400, seed=2))
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(4, activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit(x, y.astype(np.int64), epochs=EPOCHS, batch_size=32,
                    validation_data=(xv, yv.astype(np.int64)), verbose=verbose)
write_truth(
    history=history.history["val_accuracy"],
    total_epochs=EPOCHS,
    epoch_base=1,
    accuracy_key="val_accuracy",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="history.history['val_accuracy'] from model.fit",
    notes="'accuracy' is the training accuracy; verbose=1 redraws the bar with \\r and \\b",
    keras_history=history.history,
)
