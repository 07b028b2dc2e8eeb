"""detect stage: a YOLOv5 detector on the green channel (SPEC 3.7).

``core`` holds the pure logic (detector images, YOLO label lines, the train/val split, the training
recipe, boxes back to original pixels), ``yolo`` the offline Ultralytics adapter, ``task`` the Luigi tasks
(YoloExport, YoloDataset, TrainYolo, Detect, DetectAll) and ``contract`` the files and columns.
Importing this package imports neither torch nor Ultralytics.
"""
