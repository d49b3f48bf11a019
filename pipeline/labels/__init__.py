"""Labels: takes benchmark files (one module per format), gives label rows and operator graphs in the catalog.

rows.py      the row every label becomes; shared checks
plain.py     CSV and JSON lines          nb201.py  NAS-Bench-201 .pth, NATS-Bench topology folders
nds.py       NDS per-space JSON          nb101.py  the NAS-Bench-101 tfrecord (nb101_tfrecord.py parses it)
zc.py        NAS-Bench-Suite-Zero JSON   detect.py which format a file is
importer.py  `import_labels`: read, record rows and graphs in one writer
"""

from zcpipe.pipeline.errors import LabelFormatError
from zcpipe.pipeline.labels.detect import detect_format, formats
from zcpipe.pipeline.labels.importer import import_labels

__all__ = ["LabelFormatError", "detect_format", "formats", "import_labels"]
