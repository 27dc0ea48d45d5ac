"""Dataset formats: COCO JSON, YOLO txt and Pascal VOC XML, parsed to and written from plain
records. Nothing here touches the database; `darkroom.domain.transfer` does that."""
