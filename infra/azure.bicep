// Implementeringsassistenten on Azure, in the layout of the Microsoft 365 Agents Toolkit's Python templates
// (m365agents.yml runs this file with azure.parameters.json in `atk provision`; `az deployment group create`
// runs it too). What it makes, in the resource group it is deployed to:
//   - a user-assigned managed identity: the bot's identity (MicrosoftAppType=UserAssignedMSI, no secret) and
//     the identity that pulls the image from Azure Container Registry;
//   - an App Service plan on Linux and a web app running the container image `containerImage` (the repo's
//     Dockerfile): `python -m bot serve` on port 8080, health check /healthz, always on;
//   - a storage account with an Azure Files share mounted at /data, the bot's data dir (BOT_DATA_DIR);
//   - the Azure Bot (botRegistration/azurebot.bicep) with its Teams channel, pointing at /api/messages;
//   - only when usePostgres = true: an Azure Database for PostgreSQL flexible server, the bot's store
//     (BOT_DATABASE_URL; issue 14): then nothing is kept on the instance or the share.
// The app settings cover every variable of the README's configuration table; the ones left out are named,
// with the reason, in tests/e2e/test_infra.py (DELIBERATELY_DEFAULT).

@minLength(4)
@maxLength(20)
@description('Prefix of every resource name: lower-case letters and digits, e.g. kombit4f2a9c. The web app becomes <prefix>-app.azurewebsites.net, so it must be unique in Azure')
param resourceBaseName string

@maxLength(42)
@description('Display name of the Azure Bot resource')
param botDisplayName string = 'Implementeringsassistenten'

@description('Region of everything except the bot (which is global)')
param location string = resourceGroup().location

@description('The image to run, built from the repo\'s Dockerfile: <registry>/kombit-assistant:<tag>, e.g. kombitacr.azurecr.io/kombit-assistant:2025-06-01.1')
param containerImage string

@description('When the image is in an Azure Container Registry (<name>.azurecr.io/...) that lies in THIS resource group: grant the managed identity AcrPull on it. Set false for a registry in another resource group (grant AcrPull yourself) or a public image')
param grantAcrPull bool = true

@allowed([
  'B1'
  'B2'
  'B3'
  'S1'
  'S2'
  'S3'
  'P0v3'
  'P1v3'
  'P2v3'
])
@description('App Service plan size. Basic or higher: Free and Shared have no Always On, and the nudge sweep runs inside the server')
param appServicePlanSku string = 'B1'

@allowed([
  'F0'
  'S1'
])
@description('Azure Bot pricing tier (Teams is a standard channel: unlimited on F0)')
param botServiceSku string = 'F0'

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
@description('Redundancy of the storage account that holds the data dir share')
param storageSku string = 'Standard_ZRS'

@minValue(1)
@maxValue(5120)
@description('Size of the data dir share in GiB (the data is a few MB per municipality)')
param dataShareQuotaGiB int = 5

@minValue(0)
@description('BOT_NUDGE_INTERVAL_MINUTES: how often `serve` sweeps for due nudges. 0 = never: then run `python -m bot nudges` from a timed job')
param nudgeIntervalMinutes int = 15

@description('BOT_CONSULTANTS: comma-separated AAD object ids of KOMBIT consultants (also read from consultants.txt in the data share). Empty = none')
param consultants string = ''

@description('BOT_ALLOWED_TENANTS: comma-separated tenant ids allowed to use the bot. Empty = every tenant')
param allowedTenants string = ''

@description('Resource id of a Log Analytics workspace to send the app\'s console, HTTP and platform logs to. Empty = none (the logs are still in App Service\'s log stream)')
param logAnalyticsWorkspaceId string = ''

// --- PostgreSQL: the store for several instances (issue 14) ---------------------------------------------------------
// With usePostgres the bot keeps its state in the database (BOT_DATABASE_URL) and the file share holds nothing the
// bot needs; move an existing data dir in with `python -m bot admin migrate --to postgresql://…` first. Scaling the
// plan out is the deployment's next step; until then capacity stays 1 (the share allows one writer).
@description('Provision an Azure Database for PostgreSQL flexible server and set BOT_DATABASE_URL: the bot then keeps its state there (issue 14); migrate an existing data dir first')
param usePostgres bool = false

@description('PostgreSQL administrator login (not admin, root, azure_superuser, …)')
param postgresAdminLogin string = 'kombitadmin'

@secure()
@description('PostgreSQL administrator password; required when usePostgres is true (from env/.env.<env>.user as SECRET_POSTGRES_ADMIN_PASSWORD)')
param postgresAdminPassword string = ''

@description('Name of the bot\'s database on the PostgreSQL server')
param postgresDatabaseName string = 'kombit'

var baseName = toLower(resourceBaseName)
var identityName = '${baseName}-identity'
var planName = '${baseName}-plan'
var webAppName = '${baseName}-app'
// The default host name of a new web app. It cannot be read from the site inside the site's own settings (a
// cycle); the bot registration below takes the real one from the site.
var webAppHostName = '${webAppName}.azurewebsites.net'
var storageAccountName = take('${replace(baseName, '-', '')}${uniqueString(resourceGroup().id, baseName)}', 24)
var dataShareName = 'botdata'
var dataMountPath = '/data'
var postgresServerName = '${baseName}-pg-${uniqueString(resourceGroup().id, baseName)}'
var postgresHostName = '${postgresServerName}.postgres.database.azure.com'

// The registry of the image: an Azure Container Registry is pulled with the managed identity.
var imageRegistry = toLower(split(containerImage, '/')[0])
var imageFromAcr = endsWith(imageRegistry, '.azurecr.io')
var acrName = imageFromAcr ? split(imageRegistry, '.')[0] : 'none'
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d' // built-in role AcrPull

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: acrName
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (imageFromAcr && grantAcrPull) {
  name: guid(registry.id, identity.id, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The data dir: an Azure Files (SMB) share. App Service mounts it with the account key (the only way it mounts
// a share), so shared-key access stays on; nothing else is public.
resource storage 'Microsoft.Storage/storageAccounts@2023-01-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2023-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    // A deleted share can be restored for 14 days.
    shareDeleteRetentionPolicy: {
      enabled: true
      days: 14
    }
  }
}

resource dataShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-01-01' = {
  parent: fileService
  name: dataShareName
  properties: {
    shareQuota: dataShareQuotaGiB
    enabledProtocols: 'SMB'
    accessTier: 'TransactionOptimized'
  }
}

// ONE instance: the data dir on a file share has one writer (the server, with its cross-process lock). Scaling
// out needs the state in PostgreSQL (usePostgres; issue 14), not more instances on the share.
resource plan 'Microsoft.Web/serverfarms@2022-09-01' = {
  name: planName
  location: location
  kind: 'linux'
  sku: {
    name: appServicePlanSku
    capacity: 1
  }
  properties: {
    reserved: true // Linux
  }
}

resource webApp 'Microsoft.Web/sites@2022-09-01' = {
  name: webAppName
  location: location
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    siteConfig: {
      linuxFxVersion: 'DOCKER|${containerImage}'
      acrUseManagedIdentityCreds: imageFromAcr
      acrUserManagedIdentityID: imageFromAcr ? identity.properties.clientId : ''
      // The nudge sweep runs inside `serve` every BOT_NUDGE_INTERVAL_MINUTES: the process must not be unloaded.
      alwaysOn: true
      healthCheckPath: '/healthz'
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      azureStorageAccounts: {
        botdata: {
          type: 'AzureFiles'
          accountName: storage.name
          shareName: dataShare.name
          mountPath: dataMountPath
          accessKey: storage.listKeys().keys[0].value
        }
      }
      appSettings: concat([
        {
          // = EXPOSE in the Dockerfile (tests/e2e/test_infra.py checks): where `serve` listens ...
          name: 'PORT'
          value: '8080'
        }
        {
          // ... and where App Service sends the traffic
          name: 'WEBSITES_PORT'
          value: '8080'
        }
        {
          // /home is not needed: the state lives on the mounted share
          name: 'WEBSITES_ENABLE_APP_SERVICE_STORAGE'
          value: 'false'
        }
        {
          name: 'MicrosoftAppType'
          value: 'UserAssignedMSI'
        }
        {
          // the managed identity's CLIENT id, the same as the bot resource's msaAppId
          name: 'MicrosoftAppId'
          value: identity.properties.clientId
        }
        {
          name: 'MicrosoftAppTenantId'
          value: identity.properties.tenantId
        }
        {
          name: 'BOT_DATA_DIR'
          value: dataMountPath
        }
        {
          // export download links
          name: 'BOT_PUBLIC_URL'
          value: 'https://${webAppHostName}'
        }
        {
          name: 'BOT_NUDGE_INTERVAL_MINUTES'
          value: string(nudgeIntervalMinutes)
        }
        {
          name: 'BOT_CONSULTANTS'
          value: consultants
        }
        {
          name: 'BOT_ALLOWED_TENANTS'
          value: allowedTenants
        }
      ], usePostgres ? [
        {
          // The store (issue 14): the schema is created at first use.
          name: 'BOT_DATABASE_URL'
          value: 'postgresql://${uriComponent(postgresAdminLogin)}:${uriComponent(postgresAdminPassword)}@${postgresHostName}:5432/${postgresDatabaseName}?sslmode=require'
        }
      ] : [])
    }
  }
  dependsOn: [
    acrPull
  ]
}

// Container output (the bot's JSON log lines) kept on the file system for `az webapp log tail` / download.
resource webAppLogs 'Microsoft.Web/sites/config@2022-09-01' = {
  parent: webApp
  name: 'logs'
  properties: {
    httpLogs: {
      fileSystem: {
        enabled: true
        retentionInMb: 35
        retentionInDays: 7
      }
    }
  }
}

resource webAppDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsWorkspaceId)) {
  name: 'to-log-analytics'
  scope: webApp
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'AppServiceConsoleLogs'
        enabled: true
      }
      {
        category: 'AppServiceHTTPLogs'
        enabled: true
      }
      {
        category: 'AppServicePlatformLogs'
        enabled: true
      }
    ]
  }
}

// --- PostgreSQL flexible server (usePostgres; the bot's store, see above) ---------------------------------------------
resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = if (usePostgres) {
  name: postgresServerName
  location: location
  sku: {
    name: 'Standard_B1ms'
    tier: 'Burstable'
  }
  properties: {
    version: '15'
    administratorLogin: postgresAdminLogin
    administratorLoginPassword: postgresAdminPassword
    storage: {
      storageSizeGB: 32
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
  }
}

resource postgresDatabase 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = if (usePostgres) {
  parent: postgres
  name: postgresDatabaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// Public access from Azure services only (the web app's outbound addresses are Azure's). For production,
// prefer VNet integration with private access; this keeps the first deployment simple.
resource postgresFromAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (usePostgres) {
  parent: postgres
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

// --- the Azure Bot with its Teams channel ----------------------------------------------------------------------------
module azureBotRegistration './botRegistration/azurebot.bicep' = {
  name: 'Azure-Bot-registration'
  params: {
    resourceBaseName: baseName
    botDisplayName: botDisplayName
    botServiceSku: botServiceSku
    identityResourceId: identity.id
    identityClientId: identity.properties.clientId
    identityTenantId: identity.properties.tenantId
    botAppDomain: webApp.properties.defaultHostName
  }
}

// Written to env/.env.<env> by `atk provision` (names upper-cased); also shown by `az deployment group show`.
output BOT_AZURE_APP_SERVICE_RESOURCE_ID string = webApp.id
output AZURE_WEB_APP_NAME string = webApp.name
output BOT_DOMAIN string = webApp.properties.defaultHostName
output BOT_ID string = identity.properties.clientId
output BOT_TENANT_ID string = identity.properties.tenantId
output BOT_IDENTITY_RESOURCE_ID string = identity.id
output BOT_SERVICE_NAME string = azureBotRegistration.outputs.BOT_SERVICE_NAME
output DATA_STORAGE_ACCOUNT_NAME string = storage.name
output DATA_SHARE_NAME string = dataShare.name
