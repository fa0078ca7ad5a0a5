"""Keras 3 fit(verbose=2) with ModelCheckpoint(verbose=1, save_best_only) and
EarlyStopping(verbose=1, restore_best_weights): lines about the best epoch, and a stop before
the last epoch."""

import os

import keras
import numpy as np
from _data import blobs
from _truth import write_truth

EPOCHS = 30
keras.utils.set_random_seed(0)
x, y = (t.numpy() for t in blobs(800, seed=1))
xv, yv = (t.numpy() for t in blobs(200, seed=2))
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(4, activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(2e-2), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=3, verbose=1,
                                     restore_best_weights=True)
ckpt = keras.callbacks.ModelCheckpoint(os.path.join("ckpt", "best.keras"), monitor="val_accuracy",
                                       save_best_only=True, verbose=1)
history = model.fit(x, y.astype(np.int64), epochs=EPOCHS, batch_size=32,
                    validation_data=(xv, yv.astype(np.int64)), verbose=2, callbacks=[stop, ckpt])
write_truth(
    history=history.history["val_accuracy"],
    total_epochs=EPOCHS,
    epoch_base=1,
    accuracy_key="val_accuracy",
    accuracy_scale="fraction",
    accuracy_stream="stdout",
    source="history.history['val_accuracy'] from model.fit; EarlyStopping.stopped_epoch",
    notes="'val_accuracy improved from X to Y' and 'Restoring model weights from the end of "
    "the best epoch' refer to the best epoch; training stops early (epochs_done < total)",
    stopped_epoch=stop.stopped_epoch,
)
