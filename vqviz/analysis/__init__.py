"""What the app shows, computed with numpy and torch only, so that its pages stay thin.

- :mod:`.points`: the latents of a split with each sample's cluster, the cluster's label,
  right/wrong and assignment entropy (what the map is coloured by);
- :mod:`.panels`: the panel of a cluster or a selection, and the styles of each class (Fig. 4);
- :mod:`.mixing`: the style mixer's triplets and mixtures (Fig. 5);
- :mod:`.selection`: which rows a click, a box or a lasso picks, and which rows a large map draws;
- :mod:`.downstream`: k-means accuracy, NMI, linear probe and reconstruction of one model;
- :mod:`.codebook`: codebook usage and assignment entropy over a split (the SK-VQ paper's Table 1), and
  a checkpoint's codebook use over training;
- :mod:`.placement`: a new image converted, encoded and placed on a map; nearest neighbours in latent
  space; the latent behind any spot of a map.
"""

from . import placement
from .codebook import CodebookStats, UsageHistory, codebook_stats, usage_history
from .downstream import downstream_scores
from .mixing import MIX_SOURCES, mixing_picture, mixture, pick_triplet, slider_grid
from .panels import (GroupView, cluster_summary, cluster_table, cluster_view, selection_view, subclasses,
                     typical_images, typical_rows)
from .points import PointTable, centroid_images, check_inputs, clusters_of, point_table
from .selection import inside_polygon

__all__ = ["CodebookStats", "codebook_stats", "UsageHistory", "usage_history", "downstream_scores", "MIX_SOURCES",
           "mixing_picture", "mixture", "pick_triplet", "slider_grid", "GroupView", "cluster_summary", "cluster_table",
           "cluster_view", "selection_view", "subclasses", "typical_rows", "typical_images", "PointTable", "centroid_images",
           "check_inputs", "clusters_of", "point_table", "inside_polygon", "placement"]
