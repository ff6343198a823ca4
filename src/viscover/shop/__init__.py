"""Shop the look: the objects a detector finds in a scene, each searched in the catalogue by its box."""

from viscover.shop.service import SceneObjects, ShopService

__all__ = ["SceneObjects", "ShopService"]
