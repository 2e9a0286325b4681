"""Blob containers on the test session's Azurite: made per test with a unique name, read back
through azure-storage-blob, and deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from jobprep_release.azurite import Azurite, container_sas_url


@dataclass
class Blobs:
    """Containers a test made on `azurite` (all deleted when the test ends)."""

    azurite: Azurite
    made: list[str] = field(default_factory=list)

    def service(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.azurite.connection_string)

    async def container(self, blobs: dict[str, bytes] | None = None) -> str:
        """A new container (a unique name, ``test-...``) holding `blobs`; its name."""
        name = f"test-{uuid.uuid4().hex[:12]}"
        async with self.service() as service:
            client = await service.create_container(name)
            for blob, data in (blobs or {}).items():
                await client.upload_blob(blob, data)
        self.made.append(name)
        return name

    def url(self, container: str, permission: str) -> str:
        """The container's URL with a SAS granting `permission` (``rl``, ``w``, ...)."""
        return container_sas_url(self.azurite.connection_string, container, permission)

    async def read(self, container: str) -> dict[str, bytes]:
        """Every blob of the container, by name."""
        async with self.service() as service:
            client = service.get_container_client(container)
            found = {}
            async for blob in client.list_blobs():
                stream = await client.download_blob(blob.name)
                found[blob.name] = await stream.readall()
            return found

    async def content_settings(self, container: str, blob: str) -> ContentSettings:
        async with self.service() as service:
            properties = await service.get_blob_client(container, blob).get_blob_properties()
            settings: ContentSettings = properties.content_settings
            return settings

    async def remove_all(self) -> None:
        async with self.service() as service:
            for name in self.made:
                await service.delete_container(name)


@asynccontextmanager
async def blobs_on(azurite: Azurite) -> AsyncIterator[Blobs]:
    blobs = Blobs(azurite)
    try:
        yield blobs
    finally:
        await blobs.remove_all()
