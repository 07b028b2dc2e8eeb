"""classify stage: the EfficientNet cell and image classifiers of the ensemble (SPEC 3.3, 3.5, 3.6).

``data`` (numpy: labels, batches, augmentation, score tables), ``models`` (Keras: build, compile, save, load),
``train`` (fit on uint8 batches), ``predict`` (backend-agnostic prediction), ``task`` (Luigi), ``contract``
(file names and columns). Importing this package imports no deep-learning framework.
"""
