"""Image classification from ``root/<class>/*.ext`` folders (ImageNet layout).

Class index = position of the folder name in sorted order. For ImageNet the sorted 1000 wnids of
the train folder give the standard order (tench n01440764 = 0, toilet tissue n15075141 = 999).
A split holding only some classes (a subset, a few sample images) needs the full class list:
pass ``class_list`` (a text file, or a list of names) and its order is used instead.
"""
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .image_io import IMAGE_EXTENSIONS, list_images, preview, read_image


def read_class_list(path):
    """(class folder names, human names) from a class list file.

    Accepted lines: "wnid", "wnid human name" (LOC_synset_mapping.txt), or "index wnid human name"
    (then the indices must run 0, 1, 2, ... in file order).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"class list file not found: {path}")
    folders, names = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split(maxsplit=1)
        if not fields:
            continue
        if fields[0].isdigit():
            if int(fields[0]) != len(folders) or len(fields) < 2:
                raise DatasetError(f"{path}:{number}: expected 'index folder [name]' with index "
                                   f"{len(folders)}, got {line!r}")
            fields = fields[1].split(maxsplit=1)
        folders.append(fields[0])
        names.append(fields[1].strip() if len(fields) > 1 else fields[0])
    if not folders:
        raise DatasetError(f"class list file {path} is empty: expected one class per line")
    if len(set(folders)) != len(folders):
        raise DatasetError(f"class list file {path} names some classes twice")
    return folders, names


class ImageFolderDataset:
    """Random-access source: ``{"image": HxWx3 uint8, "label": int32, "path": str}``.

    ``classes`` lists folder names by index; ``class_names`` the human names when a class list
    file gave them.
    """

    def __init__(self, root, class_list=None, extensions=IMAGE_EXTENSIONS):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"image folder dataset root not found: {self.root}")
        folders = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        if not folders:
            raise DatasetError(f"no class folders in {self.root}: expected {self.root}/<class>/<image>")
        if class_list is None:
            self.classes, self.class_names = folders, list(folders)
        elif isinstance(class_list, (str, Path)):
            self.classes, self.class_names = read_class_list(class_list)
        else:
            self.classes, self.class_names = list(class_list), list(class_list)
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = [f for f in folders if f not in index]
        if unknown:
            raise DatasetError(f"folders in {self.root} are not in the class list: {preview(unknown)}")
        self.samples = []
        for folder in folders:
            self.samples += [(p, index[folder]) for p in list_images(self.root / folder, extensions)]
        if not self.samples:
            raise DatasetError(f"no images with extensions {', '.join(extensions)} "
                               f"under {self.root}/<class>/")

    @property
    def num_classes(self):
        return len(self.classes)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        return {"image": read_image(path), "label": np.int32(label), "path": str(path)}

    def __repr__(self):
        return f"ImageFolderDataset({self.root}, classes={self.num_classes}, n={len(self)})"
